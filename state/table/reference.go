package table

import "sort"

// Reference is the semantics of a table version written as a brute-force model, for tests and
// verifiers: built from every committed record of a table's topic, it answers what a View at a
// Position holds for a key, by replaying the topic in offset order, without Pebble or a consumer.
type Reference struct {
	versions map[string][]refVersion // by key, sorted by partition then offset
}

type refVersion struct {
	partition int32
	offset    int64
	value     []byte
	deleted   bool
}

// RefRecord is one committed record of a table's topic; a nil Value is a tombstone.
type RefRecord struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
}

// NewReference indexes recs (in any order).
func NewReference(recs []RefRecord) *Reference {
	r := &Reference{versions: map[string][]refVersion{}}
	for _, rec := range recs {
		k := string(rec.Key)
		r.versions[k] = append(r.versions[k], refVersion{partition: rec.Partition, offset: rec.Offset, value: rec.Value, deleted: rec.Value == nil})
	}
	for _, vs := range r.versions {
		sort.Slice(vs, func(i, j int) bool {
			if vs[i].partition != vs[j].partition {
				return vs[i].partition < vs[j].partition
			}
			return vs[i].offset < vs[j].offset
		})
	}
	return r
}

// Get returns key's row in the version pos: in each partition pos holds, the last record of key
// below the partition's offset, and of those the one in the highest-numbered partition that has
// the key (View.Get's rule). Partitions pos does not hold are not read.
func (r *Reference) Get(key []byte, pos Position) ([]byte, bool) {
	vs := r.versions[string(key)]
	for i := len(pos) - 1; i >= 0; i-- {
		po := pos[i]
		var last *refVersion
		for j := range vs {
			if vs[j].partition == po.Partition && vs[j].offset < po.Offset {
				last = &vs[j]
			}
		}
		if last != nil && !last.deleted {
			return last.value, true
		}
	}
	return nil, false
}
