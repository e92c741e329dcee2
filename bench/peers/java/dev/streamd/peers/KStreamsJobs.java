package dev.streamd.peers;

import dev.streamd.peers.Records.Ad;
import dev.streamd.peers.Records.Txn;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.GlobalKTable;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.Suppressed.BufferConfig;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;
import org.apache.kafka.streams.state.WindowStore;

/**
 * KStreamsJobs runs one of the three peer-benchmark jobs (bench/peers/README.md) in Kafka Streams:
 * RocksDB state with changelogs, exactly_once_v2, event time from the records, until stopped.
 *
 * <pre>java -jar peers-kstreams.jar JOB BROKERS INPUT OUTPUT APP_ID STATE_DIR [CAMPAIGNS]</pre>
 *
 * JOB is window (60 s tumbling count + sum per card), ysb (views joined with the campaign table,
 * count per campaign per 10 s) or sliding (per-card count + sum over the last 10 min, as of each
 * event). Windows emit once, when stream time passes their end plus the 5 s grace (suppress
 * untilWindowCloses): streamd's watermark (max event time - 5 s) and close rule. Not
 * emitStrategy(onWindowClose), which looks for closed windows at most once a second of wall-clock
 * time and only when a record arrives, so that the windows closed by the input's last second stay
 * unemitted (the checker saw 157 of them missing on a 50,000-event run).
 */
public final class KStreamsJobs {
  static final Duration GRACE = Duration.ofMillis(Panes.MAX_OUT_OF_ORDER);

  public static void main(String[] args) throws Exception {
    if (args.length < 6) {
      System.err.println("usage: JOB BROKERS INPUT OUTPUT APP_ID STATE_DIR [CAMPAIGNS]");
      System.exit(2);
    }
    String job = args[0], brokers = args[1], input = args[2], output = args[3], app = args[4], dir = args[5];
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, app);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    p.put(StreamsConfig.STATE_DIR_CONFIG, dir);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100); // the default under exactly-once; streamd's too
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.getInteger("peers.threads", 2));
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    // Kafka Streams' 10 s default under exactly-once lets the broker abort (and fence) a transaction
    // that a starved thread holds open on a loaded machine; Flink's sink here has 60 s too.
    p.put(StreamsConfig.producerPrefix(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG), 60_000);
    StreamsBuilder b = new StreamsBuilder();
    switch (job) {
      case "window" -> window(b, input, output);
      case "ysb" -> ysb(b, input, output, args[6]);
      case "sliding" -> sliding(b, input, output);
      default -> {
        System.err.println("unknown job " + job);
        System.exit(2);
      }
    }
    KafkaStreams ks = new KafkaStreams(b.build(), p);
    CountDownLatch stopped = new CountDownLatch(1);
    ks.setUncaughtExceptionHandler(e -> {
      e.printStackTrace();
      System.exit(1);
      return null;
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      ks.close(Duration.ofSeconds(10));
      stopped.countDown();
    }));
    ks.start();
    stopped.await();
  }

  static Serde<Txn> txnSerde() {
    Deserializer<Txn> d = (topic, data) -> {
      try {
        return Txn.parse(data);
      } catch (Exception e) {
        throw new RuntimeException(e);
      }
    };
    return Serdes.serdeFrom((topic, t) -> { throw new UnsupportedOperationException(); }, d);
  }

  /** CountSum is the window aggregate: 16 bytes in RocksDB. */
  static final class CountSum {
    long count;
    double sum;
  }

  static Serde<CountSum> countSumSerde() {
    return Serdes.serdeFrom(
        (topic, a) -> ByteBuffer.allocate(16).putLong(a.count).putDouble(a.sum).array(),
        (topic, data) -> {
          ByteBuffer bb = ByteBuffer.wrap(data);
          CountSum a = new CountSum();
          a.count = bb.getLong();
          a.sum = bb.getDouble();
          return a;
        });
  }

  static void window(StreamsBuilder b, String input, String output) {
    TimestampExtractor et = (rec, prev) -> ((Txn) rec.value()).ts;
    b.stream(input, Consumed.with(Serdes.String(), txnSerde()).withTimestampExtractor(et))
        .groupByKey() // the record key is the card: no repartition
        .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(60), GRACE))
        .aggregate(CountSum::new, (k, t, a) -> {
          a.count++;
          a.sum += t.amount;
          return a;
        }, Materialized.<String, CountSum, WindowStore<Bytes, byte[]>>as("window-agg")
            .withKeySerde(Serdes.String()).withValueSerde(countSumSerde()))
        .suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()))
        .toStream()
        .map((wk, a) -> KeyValue.pair(wk.key(),
            Records.windowJSON(wk.key(), wk.window().start(), wk.window().end(), a.count, a.sum, true)))
        .to(output, Produced.with(Serdes.String(), Serdes.String()));
  }

  static void ysb(StreamsBuilder b, String input, String output, String campaigns) {
    Deserializer<Ad> d = (topic, data) -> {
      try {
        return Ad.parse(data);
      } catch (Exception e) {
        throw new RuntimeException(e);
      }
    };
    Serde<Ad> adSerde = Serdes.serdeFrom((topic, a) -> { throw new UnsupportedOperationException(); }, d);
    TimestampExtractor et = (rec, prev) -> ((Ad) rec.value()).ts;
    // The campaign table: ad id -> campaign id, read whole before processing starts.
    GlobalKTable<String, String> table = b.globalTable(campaigns, Consumed.with(Serdes.String(), Serdes.String()));
    KStream<String, Ad> ads = b.stream(input, Consumed.with(Serdes.String(), adSerde).withTimestampExtractor(et));
    ads.filter((k, a) -> "view".equals(a.eventType))
        .join(table, (k, a) -> a.adId, (a, campaign) -> campaign)
        .selectKey((k, campaign) -> campaign) // a repartition by campaign, as the join decides it
        .groupByKey(Grouped.with("by-campaign", Serdes.String(), Serdes.String()))
        .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), GRACE))
        .count(Materialized.as("campaign-counts"))
        .suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()))
        .toStream()
        .map((wk, n) -> KeyValue.pair(wk.key(),
            Records.windowJSON(wk.key(), wk.window().start(), wk.window().end(), n, 0, false)))
        .to(output, Produced.with(Serdes.String(), Serdes.String()));
  }

  static void sliding(StreamsBuilder b, String input, String output) {
    TimestampExtractor et = (rec, prev) -> ((Txn) rec.value()).ts;
    b.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore("panes"), Serdes.String(), Serdes.ByteArray()));
    b.stream(input, Consumed.with(Serdes.String(), txnSerde()).withTimestampExtractor(et))
        .process(() -> new Processor<String, Txn, String, String>() {
          ProcessorContext<String, String> ctx;
          KeyValueStore<String, byte[]> store;

          @Override
          public void init(ProcessorContext<String, String> c) {
            ctx = c;
            store = c.getStateStore("panes");
          }

          @Override
          public void process(Record<String, Txn> r) {
            Txn t = r.value();
            Panes p = Panes.decode(store.get(t.card));
            p.add(t.ts, t.amount);
            store.put(t.card, p.encode());
            ctx.forward(new Record<>(t.card,
                Records.windowJSON(t.card, p.resStart, p.resEnd, p.resCount, p.resSum, true), r.timestamp()));
          }
        }, "panes")
        .to(output, Produced.with(Serdes.String(), Serdes.String()));
  }
}
