package config

import (
	"strings"
	"testing"

	"github.com/streamd/streamd/stream"
)

const withTables = good + `
tables:
  - name: merchants
    topic: merchants
    kind: global
    join: merchant
    fields:
      risk: {type: number, min: 0, max: 1}
      tier: {type: string, values: [gold, silver]}
      profile.country: {type: string}
  - name: cards
    topic: cards
    kind: co_partitioned
    fields:
      limit: {type: number, required: true}
features:
  - {name: risk, from: merchants.risk, transform: [standardize]}
  - {name: tier, from: merchants.tier, encode: onehot}
  - {name: country, from: merchants.profile.country, encode: hash, buckets: 16}
  - {name: risk_mean_1h, window: {kind: sliding, size: 1h}, agg: {mean: merchants.risk}}
  - {name: limit, from: cards.limit}
labels:
  field: fraud
models:
  list:
    - {name: m, learner: {kind: ftrl_logistic}}
`

func withMerchantField(s string) string {
	s = strings.Replace(s, "  dead_letters: tx-dlq\n", "  dead_letters: tx-dlq\n  predictions: tx-scores\n", 1)
	return strings.Replace(s, "    channel: {type: string, values: [pos, online]}\n",
		"    channel: {type: string, values: [pos, online]}\n    merchant: {type: string}\n    fraud: {type: bool}\n", 1)
}

// TestTablesCompile: tables' fields are fields of the compiled source format, features and
// windows read them, and the tables keep their kind, join and rules.
func TestTablesCompile(t *testing.T) {
	c, err := parseWithEnv([]byte(withMerchantField(withTables)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Pipeline()
	if err != nil {
		t.Fatal(err)
	}
	ef, ok := p.Source.Format.(*stream.EnrichedFormat)
	if !ok {
		t.Fatalf("source format %T, want an EnrichedFormat", p.Source.Format)
	}
	for _, f := range []string{"amount", "merchants.risk", "merchants.tier", "merchants.profile.country", "cards.limit"} {
		if _, ok := ef.FieldIndex(f); !ok {
			t.Errorf("no field %s in %v", f, ef.FieldNames())
		}
	}
	tables := p.Tables()
	if len(tables) != 2 || tables[0].Kind != stream.GlobalTable || tables[0].Join != "merchant" || tables[1].Kind != stream.CoPartitionedTable {
		t.Fatalf("tables %+v", tables)
	}
}

func TestTablesRejected(t *testing.T) {
	base := withMerchantField(withTables)
	for _, tc := range []struct {
		name, edit, with, key, msg string
	}{
		{"unknown kind", "    kind: global\n", "    kind: lookup\n", "tables[0].kind", "use global or co_partitioned"},
		{"global without join", "    join: merchant\n", "", "tables[0].join", "required for a global table"},
		{"join not a source field", "    join: merchant\n", "    join: shop\n", "tables[0].join", "string or number field in source.fields"},
		{"co-partitioned with join", "    kind: co_partitioned\n", "    kind: co_partitioned\n    join: merchant\n", "tables[1].join", "joined by the entity key"},
		{"dotted name", "  - name: cards\n", "  - name: ca.rds\n", "tables[1].name", "takes no '.'"},
		{"table is the source", "    topic: cards\n", "    topic: tx\n", "tables[1].topic", "is the source topic"},
		{"bad field type", "      limit: {type: number, required: true}\n", "      limit: {type: integer}\n", "tables[1].fields.limit.type", "use number, string or bool"},
		{"min above max", "      risk: {type: number, min: 0, max: 1}\n", "      risk: {type: number, min: 2, max: 1}\n", "tables[0].fields.risk.min", "above max"},
		{"feature of an unknown table field", "from: cards.limit}", "from: cards.cap}", "features[4].from", "TABLE.FIELD"},
		{"window mean of a string table field", "agg: {mean: merchants.risk}", "agg: {mean: merchants.tier}", "features[3].agg", "needs a number field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.edit) {
				t.Fatalf("edit %q not in config", tc.edit)
			}
			_, err := parseWithEnv([]byte(strings.Replace(base, tc.edit, tc.with, 1)), noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want %s: ...%s", err, tc.key, tc.msg)
			}
		})
	}
}
