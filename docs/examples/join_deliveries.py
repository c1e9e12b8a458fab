#!/usr/bin/env python3
"""Join portalmail's email jobs with their delivery events (docs/data.md).

Reads portalmail.email-jobs and portalmail.email-deliveries from the
beginning to their current end, decodes both as Avro through the schema
registry (the Confluent wire format: magic byte 0, 4-byte schema id) with
Confluent's Python client, and prints one JSON object per job key: the job,
how many copies of it the jobs topic holds, and every delivery record of that
key in topic order (the sender's own outcome, then Mailgun's events as
`portalmail webhooks` recorded them).

    python3 docs/examples/join_deliveries.py \\
        --bootstrap-servers kafka:9092 --schema-registry http://schema-registry:8081

Needs confluent-kafka with its Avro support: Debian's python3-confluent-kafka
and python3-avro, or `pip install "confluent-kafka[avro]"`.
"""
import argparse
import datetime
import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.avro.cached_schema_registry_client import CachedSchemaRegistryClient
from confluent_kafka.avro.serializer.message_serializer import MessageSerializer


def read_topics(bootstrap, topics, timeout):
    """Yields (topic, key, value bytes) of every record, partition by
    partition in offset order, up to each partition's end at the start."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "portalmail-data-example",  # offsets are never committed
        "enable.auto.commit": False,
        # The jobs topic is written in Kafka transactions: read only what
        # committed, as every downstream reader must.
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
    })
    try:
        parts = []
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=timeout).topics[topic]
            if meta.error is not None:
                raise SystemExit(f"{topic}: {meta.error}")
            parts += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
        consumer.assign(parts)
        pending = {(tp.topic, tp.partition) for tp in parts}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=500, timeout=1.0):
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        pending.discard((msg.topic(), msg.partition()))
                        continue
                    raise SystemExit(f"consume: {msg.error()}")
                key = msg.key().decode("utf-8") if msg.key() is not None else None
                yield msg.topic(), key, msg.value()
        if pending:
            raise SystemExit(f"did not reach the end of {sorted(pending)} within {timeout}s")
    finally:
        consumer.close()


def as_json(value):
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value)} is not JSON")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap-servers", required=True)
    ap.add_argument("--schema-registry", required=True)
    ap.add_argument("--jobs-topic", default="portalmail.email-jobs")
    ap.add_argument("--deliveries-topic", default="portalmail.email-deliveries")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()

    avro = MessageSerializer(CachedSchemaRegistryClient({"url": args.schema_registry}))
    jobs, copies, deliveries = {}, {}, {}
    for topic, record_key, value in read_topics(args.bootstrap_servers, [args.jobs_topic, args.deliveries_topic], args.timeout):
        if value is None:
            continue
        record = avro.decode_message(value)
        if topic == args.jobs_topic:
            # Record key: the company (or entity) id. The same job can be on
            # the topic more than once (a replay): the job key identifies it.
            jobs.setdefault(record["key"], record)
            copies[record["key"]] = copies.get(record["key"], 0) + 1
        else:
            # Record key: the job key, so one job's delivery records are in
            # one partition, in the order they were written.
            assert record_key == record["key"], (record_key, record["key"])
            deliveries.setdefault(record["key"], []).append(record)

    for key, job in jobs.items():
        out = {
            "key": key,
            "type": job["type"],
            "company_id": job["company_id"],
            "to": job["to"]["address"],
            "subject": job["subject"],
            "created_at": job["created_at"],
            "copies": copies[key],
            "deliveries": [
                {"outcome": d["outcome"], "event": d["event"], "at": d["at"], "attempts": d["attempts"], "provider_id": d["provider_id"]}
                for d in deliveries.get(key, [])
            ],
        }
        print(json.dumps(out, default=as_json, sort_keys=True))
    orphans = [k for k in deliveries if k not in jobs]
    print(f"{len(jobs)} jobs, {sum(len(v) for v in deliveries.values())} delivery records, "
          f"{sum(1 for k in jobs if k not in deliveries)} jobs without a delivery record, "
          f"{len(orphans)} delivery keys without a job", file=sys.stderr)


if __name__ == "__main__":
    main()
