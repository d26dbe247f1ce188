"""deploy.sh's checks before it touches anything (the Pulumi CLI itself cannot run here)."""

import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_deploy(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    # A PATH with bash and coreutils but no pulumi, as on a laptop before the CLI is installed.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "python3"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return subprocess.run(
        [str(bin_dir / "bash"), str(REPO_ROOT / "deploy.sh")],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_without_the_pulumi_cli_it_says_where_to_get_it(tmp_path):
    result = run_deploy(tmp_path)
    assert result.returncode == 1
    assert "the Pulumi CLI is not installed" in result.stderr
    assert "https://www.pulumi.com/docs/install/" in result.stderr
    # It stopped before creating anything.
    assert not (tmp_path / ".django-swarm").exists()
