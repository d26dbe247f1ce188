"""The box: the Debian 13 server in a container that ./deploy.sh --local and the rehearsal
deploy to."""
