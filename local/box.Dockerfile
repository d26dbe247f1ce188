# The box ("a droplet in a container"), for ./deploy.sh --local and the rehearsal: Debian 13 with
# systemd as PID 1 and sshd, like the default droplet image, plus Debian's registry server (the
# registry the program pushes to and the box pulls from). Docker, PostgreSQL and Nginx are NOT
# here: the program installs them, as on a droplet.
# BASE: debian:trixie from Docker Hub, or the debootstrap'd django-swarm/debian:trixie that
# tests/setup_machine.sh makes where Docker Hub cannot be reached (local/box.py picks).
ARG BASE=debian:trixie
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
# Debian 13's packages as the release has them today, as a fresh droplet would install them.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       systemd systemd-sysv dbus openssh-server docker-registry \
       ca-certificates curl gnupg iproute2 procps \
    && rm -rf /var/lib/apt/lists/* \
    # A container cannot load kernel modules; the unit would only mark the boot degraded.
    && systemctl mask systemd-modules-load.service \
    && printf '%s\n' 'PermitRootLogin prohibit-password' 'PasswordAuthentication no' \
       'KbdInteractiveAuthentication no' >/etc/ssh/sshd_config.d/rehearsal.conf
# /proc/sys is read-only in a container, so Docker 26 cannot switch IPv6 off on an overlay
# network's bridge and refuses to attach tasks; on a droplet it can. Test-box-only: tell the box's
# dockerd (installed later by the program) to go on without it.
RUN mkdir -p /etc/systemd/system/docker.service.d \
    && printf '%s\n' '[Service]' 'Environment=DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1' \
       >/etc/systemd/system/docker.service.d/rehearsal-box.conf
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
