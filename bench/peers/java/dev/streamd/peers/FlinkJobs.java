package dev.streamd.peers;

import dev.streamd.peers.Records.Ad;
import dev.streamd.peers.Records.Txn;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import java.nio.charset.StandardCharsets;

/**
 * FlinkJobs runs one of the three peer-benchmark jobs (bench/peers/README.md) in Apache Flink 2.x,
 * in a local mini-cluster inside this JVM: flink-connector-kafka source and an exactly-once
 * (transactional) Kafka sink, state in RocksDB (or the heap: -Dpeers.state=hashmap), checkpoints
 * every -Dpeers.checkpoint.ms (1000) to local disk, parallelism -Dpeers.parallelism (2).
 *
 * <pre>java -jar peers-flink.jar JOB BROKERS INPUT OUTPUT GROUP STATE_DIR [CAMPAIGNS]</pre>
 *
 * Watermarks are max event time - 5 s per Kafka partition (the minimum over partitions downstream),
 * so a window closes when every partition has passed its end + 5 s: streamd's close rule.
 */
public final class FlinkJobs {
  public static void main(String[] args) throws Exception {
    if (args.length < 6) {
      System.err.println("usage: JOB BROKERS INPUT OUTPUT GROUP STATE_DIR [CAMPAIGNS]");
      System.exit(2);
    }
    String job = args[0], brokers = args[1], input = args[2], output = args[3], group = args[4], dir = args[5];
    int par = Integer.getInteger("peers.parallelism", 2);
    Configuration conf = new Configuration();
    conf.set(CoreOptions.DEFAULT_PARALLELISM, par);
    conf.set(TaskManagerOptions.NUM_TASK_SLOTS, par);
    conf.set(StateBackendOptions.STATE_BACKEND, System.getProperty("peers.state", "rocksdb"));
    conf.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
    conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, "file://" + dir + "/checkpoints");
    conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, Duration.ofMillis(Long.getLong("peers.checkpoint.ms", 1000)));
    conf.set(CheckpointingOptions.CHECKPOINTING_CONSISTENCY_MODE, CheckpointingMode.EXACTLY_ONCE);
    conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none"); // a failure ends the run, visibly
    conf.setString("io.tmp.dirs", dir + "/tmp");
    conf.setString("state.backend.rocksdb.localdir", dir + "/rocksdb");
    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);

    DataStream<Tuple2<String, String>> out;
    switch (job) {
      case "window" -> out = txns(env, brokers, input, group)
          .keyBy(t -> t.card)
          .window(TumblingEventTimeWindows.of(Duration.ofSeconds(60)))
          .aggregate(new CountSum(), new EmitWindow(true))
          .name("window");
      case "ysb" -> out = source(env, brokers, input, group, Ad.class, Ad::parse, a -> a.ts)
          .filter(a -> "view".equals(a.eventType))
          .map(new JoinCampaign(brokers, args[6]))
          .keyBy(t -> t.card) // the campaign (Txn is reused as a (key, time) pair; amount unused)
          .window(TumblingEventTimeWindows.of(Duration.ofSeconds(10)))
          .aggregate(new CountSum(), new EmitWindow(false))
          .name("ysb");
      case "sliding" -> out = txns(env, brokers, input, group)
          .keyBy(t -> t.card)
          .process(new Sliding())
          .name("sliding");
      default -> throw new IllegalArgumentException("unknown job " + job);
    }
    out.sinkTo(KafkaSink.<Tuple2<String, String>>builder()
        .setBootstrapServers(brokers)
        .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
        .setTransactionalIdPrefix(group)
        .setProperty("transaction.timeout.ms", "60000")
        .setRecordSerializer(new Keyed(output))
        .build());
    env.execute("peers-" + job);
  }

  interface Parser<T> extends java.io.Serializable {
    T parse(byte[] b) throws IOException;
  }

  interface Time<T> extends java.io.Serializable {
    long of(T t);
  }

  static <T> DataStream<T> source(StreamExecutionEnvironment env, String brokers, String input, String group,
      Class<T> cls, Parser<T> parser, Time<T> time) {
    DeserializationSchema<T> schema = new DeserializationSchema<>() {
      @Override
      public T deserialize(byte[] message) throws IOException {
        return parser.parse(message);
      }

      @Override
      public boolean isEndOfStream(T next) {
        return false;
      }

      @Override
      public TypeInformation<T> getProducedType() {
        return TypeInformation.of(cls);
      }
    };
    KafkaSource<T> src = KafkaSource.<T>builder()
        .setBootstrapServers(brokers)
        .setTopics(input)
        .setGroupId(group) // offsets are committed to the group on each completed checkpoint
        .setStartingOffsets(OffsetsInitializer.earliest())
        .setProperty("isolation.level", "read_committed")
        .setProperty("commit.offsets.on.checkpoint", "true")
        .setValueOnlyDeserializer(schema)
        .build();
    WatermarkStrategy<T> wm = WatermarkStrategy.<T>forBoundedOutOfOrderness(Duration.ofMillis(Panes.MAX_OUT_OF_ORDER))
        .withTimestampAssigner((t, ts) -> time.of(t));
    return env.fromSource(src, wm, "kafka:" + input);
  }

  static DataStream<Txn> txns(StreamExecutionEnvironment env, String brokers, String input, String group) {
    return source(env, brokers, input, group, Txn.class, Txn::parse, t -> t.ts);
  }

  /** CountSum is the window aggregate, pre-aggregated as events arrive (a (count, sum) per window). */
  static final class CountSum implements AggregateFunction<Txn, Tuple2<Long, Double>, Tuple2<Long, Double>> {
    @Override
    public Tuple2<Long, Double> createAccumulator() {
      return Tuple2.of(0L, 0.0);
    }

    @Override
    public Tuple2<Long, Double> add(Txn t, Tuple2<Long, Double> a) {
      return Tuple2.of(a.f0 + 1, a.f1 + t.amount);
    }

    @Override
    public Tuple2<Long, Double> getResult(Tuple2<Long, Double> a) {
      return a;
    }

    @Override
    public Tuple2<Long, Double> merge(Tuple2<Long, Double> a, Tuple2<Long, Double> b) {
      return Tuple2.of(a.f0 + b.f0, a.f1 + b.f1);
    }
  }

  static final class EmitWindow extends ProcessWindowFunction<Tuple2<Long, Double>, Tuple2<String, String>, String, TimeWindow> {
    final boolean hasSum;

    EmitWindow(boolean hasSum) {
      this.hasSum = hasSum;
    }

    @Override
    public void process(String key, Context c, Iterable<Tuple2<Long, Double>> in, Collector<Tuple2<String, String>> out) {
      Tuple2<Long, Double> a = in.iterator().next();
      TimeWindow w = c.window();
      out.collect(Tuple2.of(key, Records.windowJSON(key, w.getStart(), w.getEnd(), a.f0, a.f1, hasSum)));
    }
  }

  /**
   * JoinCampaign joins an ad event with the campaign table (ad id -> campaign id), which it reads
   * whole from its compacted topic when it opens: the table of the original benchmark is a static
   * Redis hash, and Kafka Streams' GlobalKTable is likewise read whole before processing starts.
   */
  static final class JoinCampaign extends RichMapFunction<Ad, Txn> {
    final String brokers, topic;
    transient Map<String, String> table;

    JoinCampaign(String brokers, String topic) {
      this.brokers = brokers;
      this.topic = topic;
    }

    @Override
    public void open(OpenContext ctx) {
      Properties p = new Properties();
      p.put("bootstrap.servers", brokers);
      p.put("isolation.level", "read_committed");
      table = new HashMap<>();
      try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer())) {
        List<TopicPartition> tps = new ArrayList<>();
        c.partitionsFor(topic).forEach(pi -> tps.add(new TopicPartition(topic, pi.partition())));
        c.assign(tps);
        c.seekToBeginning(tps);
        Map<TopicPartition, Long> end = c.endOffsets(tps);
        while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
          for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
            table.put(r.key(), r.value());
          }
        }
      }
    }

    @Override
    public Txn map(Ad a) {
      String campaign = table.get(a.adId);
      if (campaign == null) {
        throw new IllegalStateException("ad " + a.adId + " has no campaign");
      }
      Txn t = new Txn();
      t.card = campaign;
      t.ts = a.ts;
      return t;
    }
  }

  /** Sliding is the fraud-features job: per-card panes in keyed state, one output per event. */
  static final class Sliding extends KeyedProcessFunction<String, Txn, Tuple2<String, String>> {
    transient ValueState<byte[]> panes;

    @Override
    public void open(OpenContext ctx) {
      panes = getRuntimeContext().getState(new ValueStateDescriptor<byte[]>("panes", org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
    }

    @Override
    public void processElement(Txn t, Context c, Collector<Tuple2<String, String>> out) throws IOException {
      Panes p = Panes.decode(panes.value());
      p.add(t.ts, t.amount);
      panes.update(p.encode());
      out.collect(Tuple2.of(t.card, Records.windowJSON(t.card, p.resStart, p.resEnd, p.resCount, p.resSum, true)));
    }
  }

  /** Keyed writes (key, JSON) pairs to the output topic, keyed like streamd's outputs. */
  static final class Keyed implements KafkaRecordSerializationSchema<Tuple2<String, String>> {
    final String topic;

    Keyed(String topic) {
      this.topic = topic;
    }

    @Override
    public ProducerRecord<byte[], byte[]> serialize(Tuple2<String, String> e, KafkaSinkContext ctx, Long ts) {
      return new ProducerRecord<>(topic, null, ts, e.f0.getBytes(StandardCharsets.UTF_8), e.f1.getBytes(StandardCharsets.UTF_8));
    }
  }
}
