package dev.streamd.peers;

import java.nio.ByteBuffer;

/**
 * Panes is one key's sliding-window state of the fraud-features job, with streamd's semantics
 * (window/sliding.go, docs/config.md "windows[].resolution"): event times fall in panes of RES; the
 * window as of an event at t holds the key's events so far in the SIZE/RES panes ending with the
 * pane of t, that pane included. The state is a list of (pane start, count, sum), oldest first,
 * serialized to bytes so that each system keeps it in its own store (RocksDB in both).
 *
 * <p>Panes that no on-time event can need are dropped: an event is on time while it is at most
 * MAX_OUT_OF_ORDER behind the newest event of its partition, so one behind the key's newest event by
 * more than that plus SIZE cannot come (the generator's events are at most 1 s out of order).
 */
final class Panes {
  static final long SIZE = 10 * 60_000L, RES = 10_000L, MAX_OUT_OF_ORDER = 5_000L;

  long newest = Long.MIN_VALUE; // the key's newest event time
  int n;
  long[] start = new long[8], count = new long[8];
  double[] sum = new double[8];
  // The result of the last add.
  long resStart, resEnd, resCount;
  double resSum;

  static Panes decode(byte[] b) {
    Panes p = new Panes();
    if (b == null) {
      return p;
    }
    ByteBuffer bb = ByteBuffer.wrap(b);
    p.newest = bb.getLong();
    p.n = bb.getInt();
    p.grow(p.n);
    for (int i = 0; i < p.n; i++) {
      p.start[i] = bb.getLong();
      p.count[i] = bb.getLong();
      p.sum[i] = bb.getDouble();
    }
    return p;
  }

  byte[] encode() {
    ByteBuffer bb = ByteBuffer.allocate(12 + 24 * n);
    bb.putLong(newest).putInt(n);
    for (int i = 0; i < n; i++) {
      bb.putLong(start[i]).putLong(count[i]).putDouble(sum[i]);
    }
    return bb.array();
  }

  private void grow(int want) {
    if (want > start.length) {
      int c = Math.max(want, start.length * 2);
      start = java.util.Arrays.copyOf(start, c);
      count = java.util.Arrays.copyOf(count, c);
      sum = java.util.Arrays.copyOf(sum, c);
    }
  }

  /** add puts an event into its pane and sets res* to the window as of it. */
  void add(long ts, double amount) {
    newest = Math.max(newest, ts);
    long pane = Math.floorDiv(ts, RES) * RES;
    // Drop the panes no on-time event can need, and find (or insert, in order) the event's pane.
    int k = 0, at = -1;
    for (int i = 0; i < n; i++) {
      if (start[i] + RES <= newest - MAX_OUT_OF_ORDER - SIZE) {
        continue;
      }
      start[k] = start[i];
      count[k] = count[i];
      sum[k] = sum[i];
      if (start[k] == pane) {
        at = k;
      }
      k++;
    }
    n = k;
    if (at < 0) {
      grow(n + 1);
      at = n;
      while (at > 0 && start[at - 1] > pane) {
        start[at] = start[at - 1];
        count[at] = count[at - 1];
        sum[at] = sum[at - 1];
        at--;
      }
      start[at] = pane;
      count[at] = 0;
      sum[at] = 0;
      n++;
    }
    count[at]++;
    sum[at] += amount;
    resStart = pane - SIZE + RES;
    resEnd = pane + RES;
    resCount = 0;
    resSum = 0;
    for (int i = 0; i < n; i++) {
      if (start[i] > pane - SIZE && start[i] <= pane) {
        resCount += count[i];
        resSum += sum[i];
      }
    }
  }
}
