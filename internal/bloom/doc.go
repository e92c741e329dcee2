// Package bloom is a scalable Bloom filter over 64-bit hashes, for answering "certainly not seen"
// from memory in front of a store on disk.
//
// A Filter does not know in advance how many items it will hold. It starts with one layer sized for
// the expected count and, when a layer is full, adds one of twice the capacity and half the false
// positive rate (Almeida et al., "Scalable Bloom Filters", 2007), so that the rate over all layers
// stays below twice the first layer's, 2^-12 (0.025 %), however many items arrive: a filter is
// probed once per live bucket per event, so its rate multiplies. Memory is about 17 bits per item
// in one layer, up to twice that after growing many times; New(n) with the right n (a restore
// counts its items first) needs one layer.
//
// Items are 64-bit hashes: the caller hashes once (hash/maphash) and probes every filter it keeps
// with the same hash. Probe i of a layer reads bit h + i*rotl(h, 32), mapped onto the layer's size
// (Kirsch and Mitzenmacher's double hashing), so a lookup costs k memory reads at most and
// allocates nothing. A Filter is not safe for concurrent use.
package bloom
