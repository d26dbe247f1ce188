#!/usr/bin/env bash
# Deploys the event's swarm stack and waits (bounded) until the update converged. Docker exits 0
# after an automatic rollback, so the services' UpdateStatus decides: an update of any service of
# the stack (`web`, or `web-workers` alone) rolled back or paused fails this step with the event's
# name and that service's last task errors, while the previous version keeps serving. Afterwards,
# swarm secrets no version uses any more are removed.
# A new release publishes whichever of the event's two ports (PORTS) the live one does not hold,
# so its tasks start beside the old ones (render_event.stack_file); the release that is live
# deployed again (a re-run) keeps its port, so nothing rolls. STACK_FILE holds the text last
# deployed successfully; the one being deployed waits beside it until it is live.
# Nginx's servers of the event (SERVERS_FILE, included by its upstream; MANAGER_SERVERS_FILE, its
# task on the manager alone) make one release's port the one Nginx uses and the other the backup
# (*_FIRST for the first of PORTS, *_SECOND for the second). During a rollout they follow the
# release that serves (follow_release); once a release is live, they name its port.
# Parameters: EVENT, SERVICE, STACK_FILE, STACK_TEXT, DEPLOY_TIMEOUT, SECRETS_IN_USE (names,
# spaces), PORTS (two, a space between), MANAGER_ADDRESS (where Nginx reaches the manager's
# task), SERVERS_FILE, SERVERS_FIRST, SERVERS_SECOND, MANAGER_SERVERS_FILE, MANAGER_SERVERS_FIRST,
# MANAGER_SERVERS_SECOND.
set -euo pipefail
: "${EVENT:?}" "${SERVICE:?}" "${STACK_FILE:?}" "${STACK_TEXT:?}" "${DEPLOY_TIMEOUT:?}" \
  "${SECRETS_IN_USE:?}" "${PORTS:?}" "${MANAGER_ADDRESS:?}" "${SERVERS_FILE:?}" \
  "${SERVERS_FIRST:?}" "${SERVERS_SECOND:?}" "${MANAGER_SERVERS_FILE:?}" \
  "${MANAGER_SERVERS_FIRST:?}" "${MANAGER_SERVERS_SECOND:?}"

install -d -m 700 "${STACK_FILE%/*}"
(umask 077 && printf '%s' "$STACK_TEXT" >"$STACK_FILE.new")

# What `docker stack deploy` prints is kept here and shown after the reason when the deploy
# fails, so that the reason is the first thing a failure says.
deploy_log=$(mktemp)
follower='' follower_stop=$(mktemp -u)
trap 'stop_following; rm -f "$deploy_log" "$STACK_FILE.new"' EXIT

# The stack's services, one name a line (none before its first deploy).
stack_services() {
  docker stack services --format '{{.Name}}' "$EVENT" 2>/dev/null | sort || true
}

# fail REASON [SERVICE...]: the reason first, then what the services (all of the stack's when none
# is named) say about it.
fail() {
  local reason=$1 service services=("${@:2}")
  ((${#services[@]})) || mapfile -t services < <(stack_services)
  printf 'event %s: %s; the previous version (if any) keeps serving.\n' "$EVENT" "$reason" >&2
  for service in "${services[@]}"; do
    printf 'Last tasks of %s:\n' "$service" >&2
    docker service ps --no-trunc --format '{{.Name}} {{.Image}} {{.CurrentState}} {{.Error}}' \
      "$service" 2>&1 | awk 'NR <= 10' >&2
    # A task killed for failing its health check has no error above: its own output says why.
    # (Bounded: `docker service logs` never ends for a task from before a daemon restart.)
    printf 'Last lines the tasks of %s printed:\n' "$service" >&2
    timeout 20 docker service logs --no-trunc --timestamps --tail 30 "$service" >&2 2>&1 || true
  done
  printf 'docker stack deploy printed:\n' >&2
  tail -n 20 "$deploy_log" >&2
  [[ -z $live_port ]] || point_nginx_at "$live_port"
  exit 1
}

# update_status SERVICE FIELD
update_status() {
  docker service inspect --format "{{if .UpdateStatus}}{{.UpdateStatus.$2}}{{end}}" "$1" \
    2>/dev/null || true
}

# point_nginx_at PORT: Nginx sends the event's requests to the release on PORT, the other port
# being the backup. One Nginx change at a time (event_nginx.sh takes the same lock).
point_nginx_at() {
  local servers=$SERVERS_SECOND manager_servers=$MANAGER_SERVERS_SECOND lock changed=0
  if [[ $1 == "$first_port" ]]; then
    servers=$SERVERS_FIRST manager_servers=$MANAGER_SERVERS_FIRST
  fi
  install -d -m 755 "${SERVERS_FILE%/*}" "${MANAGER_SERVERS_FILE%/*}"
  exec {lock}>/run/lock/django-swarm-nginx.lock
  flock --timeout 120 "$lock"
  printf '%s' "$servers" | replace_file "$SERVERS_FILE" 644 && changed=1
  printf '%s' "$manager_servers" | replace_file "$MANAGER_SERVERS_FILE" 644 && changed=1
  if ((changed)); then
    nginx -t -q
    reload_nginx
    log "Nginx sends $EVENT's requests to port $1"
  fi
  exec {lock}>&-
}

# Swarm stops a release's old tasks as soon as the new ones pass Docker's health check, and Nginx
# must have stopped sending them requests by then: a connection that reaches a stopping gunicorn
# is reset after Nginx sent its request, and Nginx retries a GET but never a POST. So while the
# release on port rolls out, Nginx is pointed at it as soon as the manager's new task answers its
# health endpoint, which is before Docker's check (its first probe comes seconds after the
# start); while an update rolls back, at the live port again once its task answers there. The
# task being left keeps serving a few seconds after swarm's SIGTERM (app/gunicorn.conf.py), time
# for this to take effect. A node whose task is not up yet refuses the connection, which Nginx
# retries whatever the method (render_event.nginx_upstream_servers).
serves() {
  curl -fsS -o /dev/null --max-time 2 "http://$MANAGER_ADDRESS:$1/healthz" 2>/dev/null
}

rolling_back() {
  local service
  for service in $(stack_services); do
    [[ $(update_status "$service" State) == rollback_* ]] && return 0
  done
  return 1
}

# Each second costs one request to the port Nginx does not use; swarm's state is read only once
# that answers (several events roll out at once, on one vCPU).
follow_release() {
  local pointed=$live_port other=$port want
  until [[ -e $follower_stop ]]; do
    # (A first release has no live port to go back to.)
    if [[ -n $other ]] && serves "$other"; then
      want=$port
      if rolling_back; then want=$live_port; fi
      if [[ $want == "$other" ]]; then
        point_nginx_at "$other"
        other=$pointed pointed=$want
      fi
    elif [[ $pointed == "$port" ]]; then
      # The next event may start once the new release serves and the old one has stopped: until
      # then this event holds two releases' memory. (Freeing the slot as soon as the new one
      # served let three events overlap on a 1 GB server.)
      release_start_slot
    fi
    sleep 1
  done
}

# Ends follow_release between two of its checks: never halfway through a change of Nginx.
stop_following() {
  if [[ -n $follower ]]; then
    touch "$follower_stop"
    wait "$follower" || true
    rm -f "$follower_stop"
    follower=''
  fi
}

# Docker 26 (Debian 13) is the first whose `stack deploy` can wait for the rollout.
if [[ $(docker stack deploy --help) != *--detach* ]]; then
  log "event $EVENT: Docker $(docker version --format '{{.Server.Version}}') cannot wait for a stack rollout: use Debian 13 (Docker 26 or later) on this server"
  exit 1
fi

read -r first_port second_port <<<"$PORTS"
live_port=$(docker service inspect --format \
  '{{range .Spec.EndpointSpec.Ports}}{{.PublishedPort}}{{end}}' "$SERVICE" 2>/dev/null || true)
if [[ -n $live_port && -f $STACK_FILE ]] && cmp -s "$STACK_FILE" "$STACK_FILE.new"; then
  port=$live_port
elif [[ $live_port == "$first_port" ]]; then
  port=$second_port
else
  port=$first_port
fi

# A release whose new task met DOCKER_START_FAULT (lib.sh) never ran, so it is not broken: it is
# deployed again, up to DOCKER_START_ATTEMPTS deploys in all.

# The ids of SERVICE's tasks that failed with that fault.
engine_flaked_tasks() {
  docker service ps --no-trunc --format '{{.ID}} {{.Error}}' "$1" 2>/dev/null |
    awk -v flake="$DOCKER_START_FAULT" 'index($0, flake) {print $1}' | sort || true
}

# Sets status (the exit code of `docker stack deploy`), updated (the services whose update this
# deploy started), failed (those of them that were rolled back or paused; the state of an earlier
# update, a rollback say, must not fail a deploy that changes nothing), failed_state (service ->
# its update's state) and engine_fault (1 when every failed service was rolled back after a new
# task met the fault above).
deploy() {
  local -A started_before=() flaked_before=()
  local service state
  for service in $(stack_services); do
    started_before[$service]=$(update_status "$service" StartedAt)
    flaked_before[$service]=$(engine_flaked_tasks "$service")
  done
  log "Deploying stack $EVENT on port $port (waiting up to ${DEPLOY_TIMEOUT}s)"
  status=0
  # --prune: the service on the workers goes when the event's replicas drop to one.
  DJANGO_SWARM_PORT=$port timeout "$DEPLOY_TIMEOUT" docker stack deploy --detach=false --quiet \
    --prune --with-registry-auth --compose-file "$STACK_FILE.new" "$EVENT" >"$deploy_log" 2>&1 ||
    status=$?
  failed=() engine_fault=1 updated=()
  declare -gA failed_state=()
  for service in $(stack_services); do
    [[ $(update_status "$service" StartedAt) != "${started_before[$service]:-}" ]] || continue
    updated+=("$service")
    state=$(update_status "$service" State)
    case $state in
      rollback_started | rollback_paused | rollback_completed | paused)
        failed+=("$service")
        failed_state[$service]=$state
        if [[ $state != rollback_completed || -z $(comm -13 \
          <(printf '%s\n' "${flaked_before[$service]:-}") <(engine_flaked_tasks "$service")) ]]; then
          engine_fault=0
        fi ;;
    esac
  done
}

# A new release starts (lib.sh's start slot), beside the live one if there is one: Nginx follows
# whichever serves until the rollout is over, and the slot is free again once the new one serves.
if [[ $port != "$live_port" ]]; then
  take_start_slot
  follow_release &
  follower=$!
fi
for ((attempt = 1; ; attempt++)); do
  deploy
  if ((${#failed[@]} && engine_fault && attempt < DOCKER_START_ATTEMPTS)); then
    log "event $EVENT: Docker failed to start a new container ($DOCKER_START_FAULT, a passing fault of Docker before 29.4.1); deploying again"
    continue
  fi
  break
done
if ((${#failed[@]})); then
  reasons=''
  for service in "${failed[@]}"; do
    what="failed and was rolled back"
    [[ ${failed_state[$service]} == paused ]] && what="was paused"
    reasons+="${reasons:+; }the update of $service $what ($(update_status "$service" Message))"
  done
  # The services that did take the release go back to the live one too: one release serves, and
  # every service publishes the live port, so the next deploy's port is free on every node.
  for service in "${updated[@]}"; do
    if [[ -z ${failed_state[$service]:-} ]]; then
      log "event $EVENT: rolling $service back to the live release as well"
      timeout "$DEPLOY_TIMEOUT" docker service rollback --quiet --detach=false "$service" \
        >>"$deploy_log" 2>&1 || reasons+="; rolling $service back failed too"
    fi
  done
  stop_following
  release_start_slot
  fail "$reasons" "${failed[@]}"
fi
stop_following
release_start_slot
if ((status == 124)); then
  fail "the service did not converge within ${DEPLOY_TIMEOUT}s"
elif ((status != 0)); then
  fail "docker stack deploy failed (exit ${status})"
fi
mv -f "$STACK_FILE.new" "$STACK_FILE"
point_nginx_at "$port"

for name in $(docker secret ls --format '{{.Name}}' --filter "label=django-swarm.event=$EVENT"); do
  if [[ " $SECRETS_IN_USE " != *" $name "* ]]; then
    if docker secret rm "$name" >/dev/null 2>&1; then
      log "Removed old swarm secret $name"
    else
      log "Kept old swarm secret $name: still in use"
    fi
  fi
done
log "Stack $EVENT serves $(docker service ls --filter "name=$SERVICE" --format '{{.Replicas}}') replicas"
