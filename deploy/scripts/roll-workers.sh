#!/usr/bin/env bash
# Move the worker hosts onto the instance group's current template without cutting jobs short.
#
# Usage: roll-workers.sh --project P --group G --region R [--parallel N] [--iap true|false]
#                        [--timeout SECONDS] [--poll SECONDS]
#
# For each host still on an older template (PARALLEL at a time):
#   1. `systemctl stop --no-block travis-worker` over SSH: the worker drains (SIGINT): its
#      running jobs finish, it takes no new ones, then it exits;
#   2. its /healthz stops answering, so autohealing recreates the host, and the group's
#      force_update_on_repair gives the new host the current template;
#   3. wait until the group lists the host on the current template and RUNNING.
# Needs: gcloud, authenticated, with SSH access to the hosts (README: "Making changes").
set -euo pipefail

gcloud=${GCLOUD:-gcloud}
project="" group="" region="" parallel=1 iap=false timeout=7200 poll=30

while [ $# -gt 0 ]; do
    case "$1" in
        --project) project=$2; shift 2 ;;
        --group) group=$2; shift 2 ;;
        --region) region=$2; shift 2 ;;
        --parallel) parallel=$2; shift 2 ;;
        --iap) iap=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --poll) poll=$2; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
if [ -z "$group" ] || [ -z "$region" ]; then
    echo "usage: $0 --project P --group G --region R [--parallel N] [--iap true|false]" >&2
    exit 2
fi

scope=(--region "$region")
[ -n "$project" ] && scope+=(--project "$project")

current_template() {
    "$gcloud" compute instance-groups managed describe "$group" "${scope[@]}" \
        --format='value(versions[0].instanceTemplate.basename())'
}

# One line per host: NAME,ZONE,TEMPLATE,STATUS
list_hosts() {
    "$gcloud" compute instance-groups managed list-instances "$group" "${scope[@]}" \
        --format='csv[no-heading](instance.basename(),instance.segment(-3),version.instanceTemplate.basename(),instanceStatus)'
}

drain() {
    local name=$1 zone=$2
    local ssh=(compute ssh "$name" --zone "$zone" --command 'sudo systemctl stop --no-block travis-worker.service')
    [ -n "$project" ] && ssh+=(--project "$project")
    [ "$iap" = "true" ] && ssh+=(--tunnel-through-iap)
    echo "draining $name ($zone)"
    "$gcloud" "${ssh[@]}"
}

replaced() {
    local name=$1 template=$2
    list_hosts | grep -qx "${name},[^,]*,${template},RUNNING"
}

template=$(current_template)
if [ -z "$template" ]; then
    echo "cannot read the current template of $group" >&2
    exit 1
fi
outdated=()
while IFS= read -r host; do
    outdated+=("$host")
done < <(list_hosts | awk -F, -v t="$template" '$3 != t { print $1 "," $2 }')
echo "${#outdated[@]} host(s) of $group not on $template"

for ((start = 0; start < ${#outdated[@]}; start += parallel)); do
    batch=("${outdated[@]:start:parallel}")
    for host in "${batch[@]}"; do
        drain "${host%%,*}" "${host##*,}"
    done
    deadline=$((SECONDS + timeout))
    for host in "${batch[@]}"; do
        name=${host%%,*}
        until replaced "$name" "$template"; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                echo "$name was not replaced within ${timeout}s; stopping the roll" >&2
                exit 1
            fi
            sleep "$poll"
        done
        echo "$name runs $template"
    done
done
echo "all hosts of $group run $template"
