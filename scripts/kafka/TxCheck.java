// Self-test of the test broker, run by `scripts/kafka.sh selftest` as a
// single-file Java program on the broker's own classpath (kafka-clients).
//
// It writes one committed and one aborted transaction to a fresh topic and
// reads it back with isolation.level=read_committed: the committed records
// must all be there and the aborted one must not.
//
// usage: java -cp CP TxCheck.java BOOTSTRAP [TOPIC]

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.UUID;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxCheck {
    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: TxCheck BOOTSTRAP [TOPIC]");
            System.exit(2);
        }
        String bootstrap = args[0];
        String run = UUID.randomUUID().toString().substring(0, 8);
        String topic = args.length > 1 ? args[1] : "portalmail-selftest-" + run;

        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "portalmail-selftest-" + run);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "60000");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());

        List<String> committed = List.of("committed-1-" + run, "committed-2-" + run);
        String aborted = "aborted-" + run;
        long t0 = System.nanoTime();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            producer.beginTransaction();
            for (String v : committed) {
                producer.send(new ProducerRecord<>(topic, "k", v)).get();
            }
            producer.commitTransaction();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, "k", aborted)).get();
            producer.abortTransaction();
        }
        long t1 = System.nanoTime();

        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.GROUP_ID_CONFIG, "portalmail-selftest-" + run);
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());

        List<String> seen = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            consumer.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 60_000;
            while (seen.size() < committed.size() && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    seen.add(r.value());
                }
            }
            // Give an aborted record a last chance to (wrongly) show up.
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofSeconds(1))) {
                seen.add(r.value());
            }
            consumer.commitSync();
        }
        long t2 = System.nanoTime();

        boolean ok = seen.equals(committed);
        System.err.printf("selftest: topic=%s produced(tx commit+abort)=%dms consumed(read_committed)=%dms seen=%s%n",
                topic, (t1 - t0) / 1_000_000, (t2 - t1) / 1_000_000, seen);
        if (!ok) {
            System.err.println("selftest: FAILED: expected exactly " + committed);
            System.exit(1);
        }
        System.err.println("selftest: OK: transactions commit and abort, read_committed hides the aborted record");
    }
}
