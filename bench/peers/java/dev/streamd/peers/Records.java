package dev.streamd.peers;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.Serializable;
import java.time.Instant;

/**
 * Records holds the input records of the three jobs and their JSON parsing (Jackson, as a Java user
 * of either system would write it), and the JSON of the outputs, which the Go checker
 * (test/peers) compares with streamd's. Both jars compile this file.
 */
public final class Records {
  private Records() {}

  static final ObjectMapper JSON =
      new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

  /** Txn is a card transaction of internal/gen: the fields the jobs read. A Flink POJO. */
  public static final class Txn implements Serializable {
    public String card;
    public long ts; // event time, Unix milliseconds
    public double amount;

    public Txn() {}

    static Txn parse(byte[] value) throws IOException {
      JsonNode n = JSON.readTree(value);
      Txn t = new Txn();
      t.card = n.get("card_id").asText();
      t.ts = Instant.parse(n.get("event_time").asText()).toEpochMilli();
      t.amount = n.get("amount").asDouble();
      return t;
    }
  }

  /** Ad is an ad event of the Yahoo Streaming Benchmark shape (test/peers/ysb.go). A Flink POJO. */
  public static final class Ad implements Serializable {
    public String adId;
    public String eventType;
    public long ts;

    public Ad() {}

    static Ad parse(byte[] value) throws IOException {
      JsonNode n = JSON.readTree(value);
      Ad a = new Ad();
      a.adId = n.get("ad_id").asText();
      a.eventType = n.get("event_type").asText();
      a.ts = Instant.parse(n.get("event_time").asText()).toEpochMilli();
      return a;
    }
  }

  /** windowJSON is one window result: key, [start, end), count and (when hasSum) the sum. */
  static String windowJSON(String key, long start, long end, long count, double sum, boolean hasSum) {
    StringBuilder b = new StringBuilder(96);
    b.append("{\"key\":\"").append(key).append("\",\"start\":").append(start).append(",\"end\":").append(end)
        .append(",\"count\":").append(count);
    if (hasSum) {
      b.append(",\"sum\":").append(sum);
    }
    return b.append('}').toString();
  }
}
