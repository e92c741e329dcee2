package stream

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

func (r *Runtime) isChangelog(topic string) bool {
	return strings.HasPrefix(topic, r.pipeline.Name+"-") && strings.HasSuffix(topic, "-changelog")
}

// changelogPartitioner sends changelog records to the partition the task set (its own), and every
// other record by its key, the way the Java client does, so that outputs are co-partitioned with
// anything else keyed the same way.
type changelogPartitioner struct{ isChangelog func(string) bool }

func (p changelogPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.isChangelog(topic) {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(topic)
}
