#!/usr/bin/env bash
# scripts/produce-sample.sh [FILE]: produce a CDC export (JSON lines of
# {"topic","key","value"}, default examples/sample.jsonl) into the Kafka of
# docker-compose.yml, each record to its topic, in file order per topic.
# Needs jq on the host; runs kafka-console-producer.sh inside the kafka container.
set -euo pipefail
cd "$(dirname "$0")/.."
FILE="${1:-examples/sample.jsonl}"
COMPOSE="${COMPOSE:-docker compose}"
command -v jq >/dev/null || { echo "produce-sample: jq is required" >&2; exit 1; }
for topic in $(jq -r '.topic' "$FILE" | awk '!seen[$0]++'); do
	n=$(jq -c --arg t "$topic" 'select(.topic == $t)' "$FILE" | wc -l)
	echo "produce-sample: $n records to $topic" >&2
	jq -r --arg t "$topic" 'select(.topic == $t) | "\(.key | tojson)\t\(.value | tojson)"' "$FILE" |
		$COMPOSE exec -T kafka /opt/kafka/bin/kafka-console-producer.sh --bootstrap-server kafka:9092 \
			--topic "$topic" --property parse.key=true --property key.separator=$'\t' --property null.marker=null
done
