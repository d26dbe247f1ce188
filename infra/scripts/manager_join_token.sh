#!/usr/bin/env bash
# On the manager: the token a worker joins the swarm with (the step's output is secret).
log "Reading the swarm's worker join token"
docker swarm join-token --quiet worker
