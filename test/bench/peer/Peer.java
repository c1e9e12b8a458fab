// Peer.java: the Kafka Streams stage issue 10 measures `portalmail process`
// against: what a team would build instead with Kafka Streams 4.4 and its
// defaults (exactly_once_v2, one stream thread, RocksDB stores with their
// changelogs, the 100 ms commit interval of exactly-once). It does the part
// of portalmail's work the issue names: decode each Debezium change, look up
// the row's previous image, evaluate the catalog's transition rules, keep the
// usage bands (with hysteresis), and write one job per transition, as JSON.
// No recipients, rendering, Avro or timers.
//
// The rules come from the catalog (the e2e driver writes them as rules.json,
// test/bench/e2e/peer.go). Usage samples are keyed by their subscription_id,
// the subscriptions by their id: the peer re-keys the samples to the
// subscription's key and repartitions them, so a sample and its subscription
// meet in one task (Kafka Streams' co-partitioning; a topic cannot feed both
// a stream and a global table of one topology).
//
// Run as a source file on the classpath of test/bench/peer/pom.xml:
//
//   java -cp "$(KAFKA_POM=test/bench/peer/pom.xml scripts/kafka.sh classpath)" \
//     test/bench/peer/Peer.java --brokers 127.0.0.1:9092 --app-id peer \
//     --topics portal.public.partners,... --jobs-topic peer.jobs --rules rules.json \
//     --state-dir /tmp/peer-state
//
// It runs until it is stopped (SIGTERM closes the streams cleanly).

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

public class Peer {
  static final ObjectMapper JSON = new ObjectMapper();

  /** One transition rule of the catalog (catalog.Transition). */
  static final class Rule {
    String type, table, field, change;
    boolean create;
    List<String> from = List.of(), to = List.of();
    List<Cond> where = List.of();
  }

  /** A condition on a row (catalog.Cond). */
  static final class Cond {
    String field;
    List<String> in;
    boolean not;

    boolean holds(JsonNode row) {
      return in.contains(str(row, field)) != not;
    }
  }

  /** The usage threshold (catalog.Threshold) and the types of its two levels. */
  static final class Threshold {
    String table, value, capacityRef, capacityTable, capacityField, usageType, overType;
    int minCapacity;
  }

  /** The band lines (catalog.Bands). */
  static final class Bands {
    int usageAt, usageRearmBelow, overAbove, overRearmAtOrBelow;
  }

  static Map<String, List<Rule>> rulesByTable = new HashMap<>();
  static Threshold threshold;
  static Bands bands;
  static String portalPrefix, servicePrefix;

  public static void main(String[] args) throws Exception {
    Map<String, String> a = new HashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      if (!args[i].startsWith("--")) throw new IllegalArgumentException("unexpected argument " + args[i]);
      a.put(args[i].substring(2), args[i + 1]);
    }
    for (String k : List.of("brokers", "app-id", "topics", "jobs-topic", "rules", "state-dir", "portal-prefix", "service-prefix")) {
      if (!a.containsKey(k)) throw new IllegalArgumentException("missing --" + k);
    }
    portalPrefix = a.get("portal-prefix");
    servicePrefix = a.get("service-prefix");
    loadRules(new File(a.get("rules")));

    String usageTopic = topicOf(threshold.table);
    List<String> main = new ArrayList<>();
    for (String t : a.get("topics").split(",")) {
      if (!t.equals(usageTopic)) main.add(t);
    }
    StreamsBuilder b = new StreamsBuilder();
    b.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore("rows"), Serdes.String(), Serdes.String()));
    b.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore("bands"), Serdes.String(), Serdes.String()));
    Consumed<String, String> strings = Consumed.with(Serdes.String(), Serdes.String());
    KStream<String, String> changes = b.stream(main, strings);
    KStream<String, String> samples = b.stream(usageTopic, strings)
        .selectKey((k, v) -> capacityKey(v))
        .repartition(Repartitioned.with(Serdes.String(), Serdes.String()).withName("usage-by-subscription"));
    changes.merge(samples)
        .process(RuleProcessor::new, "rows", "bands")
        .to(a.get("jobs-topic"), Produced.with(Serdes.String(), Serdes.String()));

    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, a.get("app-id"));
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("brokers"));
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    p.put(StreamsConfig.STATE_DIR_CONFIG, a.get("state-dir"));
    // The single broker of the benchmark: internal topics with one replica.
    p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    KafkaStreams streams = new KafkaStreams(b.build(), p);
    CountDownLatch done = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close();
      done.countDown();
    }));
    streams.setUncaughtExceptionHandler(e -> {
      System.err.println("peer: stream thread failed: " + e);
      e.printStackTrace();
      return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_APPLICATION;
    });
    streams.setStateListener((now, was) -> System.err.println("peer: state " + was + " -> " + now));
    streams.start();
    done.await();
  }

  static void loadRules(File f) throws Exception {
    JsonNode root = JSON.readTree(f);
    for (JsonNode n : root.get("transitions")) {
      Rule r = new Rule();
      r.type = n.get("type").asText();
      r.table = n.get("table").asText();
      r.create = n.get("create").asBoolean();
      r.field = n.path("field").asText("");
      r.change = n.path("change").asText("value_in");
      r.from = strings(n.get("from"));
      r.to = strings(n.get("to"));
      List<Cond> where = new ArrayList<>();
      for (JsonNode w : n.path("where")) {
        Cond c = new Cond();
        c.field = w.get("field").asText();
        c.in = strings(w.get("in"));
        c.not = w.path("not").asBoolean(false);
        where.add(c);
      }
      r.where = where;
      rulesByTable.computeIfAbsent(r.table, k -> new ArrayList<>()).add(r);
    }
    JsonNode t = root.get("threshold");
    threshold = new Threshold();
    threshold.table = t.get("table").asText();
    threshold.value = t.get("value").asText();
    threshold.capacityRef = t.get("capacity_ref").asText();
    threshold.capacityTable = t.get("capacity_table").asText();
    threshold.capacityField = t.get("capacity_field").asText();
    threshold.minCapacity = t.get("min_capacity").asInt();
    threshold.usageType = t.get("usage_type").asText();
    threshold.overType = t.get("over_type").asText();
    JsonNode bn = root.get("bands");
    bands = new Bands();
    bands.usageAt = bn.get("usage_at").asInt();
    bands.usageRearmBelow = bn.get("usage_rearm_below").asInt();
    bands.overAbove = bn.get("over_above").asInt();
    bands.overRearmAtOrBelow = bn.get("over_rearm_at_or_below").asInt();
  }

  static List<String> strings(JsonNode n) {
    List<String> out = new ArrayList<>();
    if (n != null) for (JsonNode e : n) out.add(e.asText());
    return out;
  }

  /** The run's topic of a canonical table name ("portal.public.x" -> "<prefix>.public.x"). */
  static String topicOf(String table) {
    if (table.startsWith("portal.")) return portalPrefix + table.substring("portal".length());
    if (table.startsWith("service.")) return servicePrefix + table.substring("service".length());
    return table;
  }

  /** The canonical table name of a run's topic. */
  static String tableOf(String topic) {
    if (topic.startsWith(portalPrefix + ".")) return "portal" + topic.substring(portalPrefix.length());
    if (topic.startsWith(servicePrefix + ".")) return "service" + topic.substring(servicePrefix.length());
    return topic;
  }

  /** The envelope of a record value (unwrapping the JsonConverter's schema/payload form). */
  static JsonNode envelope(String value) throws Exception {
    JsonNode env = JSON.readTree(value);
    if (env.has("schema") && env.has("payload")) env = env.get("payload");
    return env;
  }

  /** A usage sample's key in its subscription's key form: {"id":"<subscription_id>"}. */
  static String capacityKey(String value) {
    try {
      if (value == null) return null;
      JsonNode after = envelope(value).get("after");
      return "{\"id\":" + JSON.writeValueAsString(str(after, threshold.capacityRef)) + "}";
    } catch (Exception e) {
      throw new RuntimeException("peer: usage sample: " + e, e);
    }
  }

  /** A column as catalog's Row.Str reads it: "" for null or absent. */
  static String str(JsonNode row, String col) {
    if (row == null || row.isNull()) return "";
    JsonNode v = row.get(col);
    if (v == null || v.isNull()) return "";
    return v.isTextual() ? v.textValue() : v.asText();
  }

  static OffsetDateTime time(JsonNode row, String col) {
    String s = str(row, col);
    if (s.isEmpty()) return null;
    try {
      return OffsetDateTime.parse(s);
    } catch (Exception e) {
      return null;
    }
  }

  /** catalog.Transition's firing rule (processor/transition.go). */
  static boolean fires(Rule r, String op, JsonNode prev, JsonNode next) {
    for (Cond c : r.where) if (!c.holds(next)) return false;
    if (op.equals("c")) {
      if (!r.create) return false;
      return r.field.isEmpty() || r.to.isEmpty() || r.to.contains(str(next, r.field));
    }
    if (!op.equals("u") || r.field.isEmpty() || prev == null || prev.isNull()) return false;
    switch (r.change) {
      case "value_in": {
        String before = str(prev, r.field), after = str(next, r.field);
        if (before.equals(after)) return false;
        if (!r.to.isEmpty() && !r.to.contains(after)) return false;
        return r.from.isEmpty() || r.from.contains(before);
      }
      case "set_or_moved": {
        OffsetDateTime after = time(next, r.field), before = time(prev, r.field);
        return after != null && (before == null || !before.isEqual(after));
      }
      case "first_set":
        return time(next, r.field) != null && time(prev, r.field) == null;
      case "moved_later": {
        OffsetDateTime after = time(next, r.field), before = time(prev, r.field);
        return after != null && before != null && after.isAfter(before);
      }
      default:
        throw new IllegalStateException("unknown change kind " + r.change);
    }
  }

  /** Applies each change to the row store and writes a job per rule it fires. */
  static final class RuleProcessor implements Processor<String, String, String, String> {
    ProcessorContext<String, String> ctx;
    KeyValueStore<String, String> rows, bandStore;

    @Override
    public void init(ProcessorContext<String, String> ctx) {
      this.ctx = ctx;
      rows = ctx.getStateStore("rows");
      bandStore = ctx.getStateStore("bands");
    }

    @Override
    public void process(Record<String, String> rec) {
      if (rec.value() == null) return; // a tombstone
      var meta = ctx.recordMetadata().orElseThrow();
      String topic = meta.topic();
      String table = topic.endsWith("-repartition") ? threshold.table : tableOf(topic);
      try {
        JsonNode env = envelope(rec.value());
        String op = env.path("op").asText();
        if (op.equals("t")) return;
        JsonNode after = env.get("after"), before = env.get("before");
        String id = str(after, "id");
        if (id.isEmpty()) id = str(before, "id");
        if (id.isEmpty()) id = rec.key();
        String rowKey = table + "/" + id;
        String stored = rows.get(rowKey);
        JsonNode prev = stored != null ? JSON.readTree(stored) : before;
        if (after == null || after.isNull()) {
          rows.delete(rowKey);
          return;
        }
        rows.put(rowKey, after.toString());
        for (Rule r : rulesByTable.getOrDefault(table, List.of())) {
          if (fires(r, op, prev, after)) emit(rec, r.type, table, id, topic, meta.partition(), meta.offset());
        }
        if (table.equals(threshold.table)) band(rec, after, table, id, topic, meta.partition(), meta.offset());
      } catch (Exception e) {
        throw new RuntimeException("peer: " + topic + "/" + meta.partition() + "@" + meta.offset() + ": " + e, e);
      }
    }

    /** The band hysteresis of one usage sample (state/bands.go). */
    void band(Record<String, String> rec, JsonNode sample, String table, String id, String topic, int part, long off) throws Exception {
      String sub = str(sample, threshold.capacityRef);
      String cap = rows.get(threshold.capacityTable + "/" + sub);
      if (cap == null) return;
      JsonNode capRow = JSON.readTree(cap);
      long capacity, value;
      try {
        capacity = Long.parseLong(str(capRow, threshold.capacityField));
        value = Long.parseLong(str(sample, threshold.value));
      } catch (NumberFormatException e) {
        return;
      }
      if (capacity < threshold.minCapacity || capacity <= 0 || value < 0) return;
      long x = Math.min(100 * value / capacity, Integer.MAX_VALUE);
      String st = bandStore.get(sub);
      boolean usageDisarmed = st != null && st.charAt(0) == '1', overDisarmed = st != null && st.charAt(1) == '1';
      if (x < bands.usageRearmBelow) usageDisarmed = false;
      if (x <= bands.overRearmAtOrBelow) overDisarmed = false;
      if (x > bands.overAbove && !overDisarmed) {
        overDisarmed = usageDisarmed = true;
        emit(rec, threshold.overType, table, id, topic, part, off);
      } else if (x >= bands.usageAt && !usageDisarmed) {
        usageDisarmed = true;
        emit(rec, threshold.usageType, table, id, topic, part, off);
      }
      bandStore.put(sub, (usageDisarmed ? "1" : "0") + (overDisarmed ? "1" : "0"));
    }

    void emit(Record<String, String> rec, String type, String table, String id, String topic, int part, long off) {
      ObjectNode job = JSON.createObjectNode();
      job.put("key", type + "/" + table + "/" + id + "@" + topic + "/" + part + "/" + off);
      job.put("type", type);
      job.put("table", table);
      job.put("id", id);
      job.put("topic", topic);
      job.put("partition", part);
      job.put("offset", off);
      ctx.forward(rec.withValue(job.toString()));
    }
  }
}
