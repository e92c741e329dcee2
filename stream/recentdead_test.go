package stream

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestDeadLetterRing(t *testing.T) {
	t.Run("newest first, bounded", func(t *testing.T) {
		var r deadLetterRing
		at := time.Unix(100, 0)
		for i := range RecentDeadLetters + 7 {
			r.add([]DeadLetterInfo{{Offset: int64(i)}}, at)
		}
		got := r.recent()
		if len(got) != RecentDeadLetters {
			t.Fatalf("held %d, want %d", len(got), RecentDeadLetters)
		}
		for i, d := range got {
			if want := int64(RecentDeadLetters + 6 - i); d.Offset != want {
				t.Fatalf("entry %d has offset %d, want %d (newest first)", i, d.Offset, want)
			}
			if !d.Time.Equal(at) {
				t.Fatalf("entry %d time %v, want the commit time %v", i, d.Time, at)
			}
		}
	})
	t.Run("empty", func(t *testing.T) {
		var r deadLetterRing
		if got := r.recent(); len(got) != 0 {
			t.Fatalf("empty ring gave %d entries", len(got))
		}
	})
}

func TestNoteDeadLetter(t *testing.T) {
	var c cycleCounts
	big := bytes.Repeat([]byte("x"), 3*RecentDeadLetterBytes)
	rj := &Rejection{Reason: ReasonMalformedJSON, Field: "amount", Detail: "not a number"}
	for i := range RecentDeadLetters + 10 {
		c.noteDeadLetter(&kgo.Record{Topic: "in", Partition: 2, Offset: int64(i), Key: []byte(fmt.Sprint(i)), Value: big}, rj, "op")
	}
	if len(c.recentDead) != RecentDeadLetters {
		t.Fatalf("a cycle kept %d dead letters, want at most %d", len(c.recentDead), RecentDeadLetters)
	}
	d := c.recentDead[3]
	if d.Offset != 3 || string(d.Key) != "3" || d.Reason != ReasonMalformedJSON || d.Field != "amount" || d.Operator != "op" {
		t.Fatalf("kept %+v", d)
	}
	if len(d.Value) != RecentDeadLetterBytes || d.ValueBytes != len(big) {
		t.Fatalf("value copy %d bytes of %d, want %d of %d", len(d.Value), d.ValueBytes, RecentDeadLetterBytes, len(big))
	}
	big[0] = 'y'
	if d.Value[0] != 'x' {
		t.Fatal("the kept value aliases the record's buffer")
	}
	c.reset()
	if len(c.recentDead) != 0 {
		t.Fatal("reset kept the cycle's dead letters")
	}
}
