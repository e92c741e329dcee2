// Package gen generates a realistic, deterministic stream of card transactions for the fraud-scoring
// demo and for tests: records keyed by card id with event times slightly out of order, a fraud ground
// truth, fraud labels that arrive later for a separate labels topic, deliberately broken records of
// known kinds, and optionally an abrupt concept drift. It backs `streamd gen` (any broker) and
// `streamd demo` (an in-process kfake broker).
//
// # Determinism
//
// A Generator draws from three PCG streams seeded from Config.Seed: one for the transactions (cards,
// traits, event-time jitter, ground truth), one for which records are broken and how, and one for which
// events get labels. Given the seed and the sequence of `now` values passed to Next, the output is
// identical byte for byte; only the event times depend on `now`. Because the streams are separate,
// changing BadRatio or LabelRatio does not change the underlying transactions (record i carries the
// same Tx whether or not it was broken). Event ids are 16 hex digits of a seeded bijection of the
// sequence number: unique within a generator, different across seeds.
//
// # Transactions
//
// A card is drawn from a Zipf distribution over Config.Keys cards (math/rand/v2, s = ZipfS, v = 1),
// its rank mapped to a card id by a seeded bijection, so a few cards are hot and the hot ones are
// scattered over the id space. Every card has a home country fixed by the seed (weighted towards the
// US and Europe). A legitimate transaction is in the home country 96% of the time; its channel is
// pos/online/atm (62/32/6%); its merchant category code (grocery 5411, restaurants 5812, fuel 5541,
// electronics 5732, money transfer 4829, ATM cash 6011, …) is drawn for the channel; its merchant is
// drawn, Zipf-skewed, from the 3000 merchants "m-0000".."m-2999" of that category (each merchant has
// one category); its amount is log-normal around the category's typical amount (ATM cash in multiples
// of 20), two decimals, between 0.50 and 20000. The event time is now - uniform[0, OutOfOrder) in
// whole milliseconds.
//
// # Fraud model
//
// Fraud comes mostly from compromised cards. At any time four compromised cards are being abused;
// when one's burst ends (after 3..30 transactions) a fresh card, drawn uniformly (fraudsters do not
// pick by popularity, so it is usually a quiet card), takes its place. A share c = min(0.5,
// 1.25·FraudRate) of all records is made by the fraudsters: such a record goes to one of the four
// compromised cards, so those cards' transaction count, amount sum and distinct-merchant count over
// the last minutes rise well above what a quiet card shows. Before the drift a fraudster's
// transaction is foreign 45% of the time (from countries weighted towards NG, RO, BR, ID, VN, …),
// online or ATM more often (48% and 12%), at risky categories more often (electronics, jewelry, money
// transfer, gambling, direct marketing), at merchants spread uniformly over the category, with amounts
// about 1.6 times the category's usual. Legitimate transactions show each of these traits too, only
// less often.
//
// The ground truth is a Bernoulli draw with probability sigmoid(b + w·x), x being the traits:
//
//	before the drift: 4.5·attack + 1.3·foreign + 0.6·online + 0.9·atm + 0.45·ln(amount/50) + 1.0·risky MCC
//	after the drift:  4.5·attack − 0.6·foreign + 0.9·pos + 1.0·(60 ≤ amount ≤ 250) + 1.0·MCC ∈ {5411, 5541, 5311, 5912}
//
// where attack says the transaction was made by a fraudster. The intercept b is calibrated when the
// generator is made (bisection over Monte Carlo samples of both kinds of transactions, mixed in the
// proportion c), separately before and after the drift, so the overall fraud rate is FraudRate within
// a few percent. Most fraud is thus on compromised cards, and some legitimate-looking transactions
// with risky traits are fraud too. A model with per-card windowed features (count and amount sum over
// the last minutes, distinct merchants, ideally over a short and a long window so hot cards are not
// mistaken for bursts) plus the raw fields (log amount, foreign, channel, MCC) can learn it; the raw
// fields alone do noticeably worse. (On the tests' stream, a logistic regression gets an AUC of about
// 0.88 from the raw fields and 0.92 with windowed features added.)
//
// # Drift
//
// With DriftAt > 0, from record DriftAt on (0-based sequence number, bad records counted) the fraud
// pattern flips abruptly: fraudsters use cloned cards at home, in person (POS 80%), for mid amounts
// (log-normal around 120) at everyday categories (grocery, fuel, department and drug stores), and
// the logit's weights flip accordingly (foreign now lowers the odds). The bursts and the overall rate
// stay; a model trained before the drift ranks much worse after it until it relearns.
//
// # Labels
//
// Every valid record gets, with probability LabelRatio, a label due at its event time + LabelDelay
// (on the event-time clock, the `now` passed to Next and DueLabels). DueLabels returns the due ones
// in due order; each labelled event is labelled exactly once. Bad records are never labelled. The
// label's time is its due time. Pending labels are kept compactly (32 bytes each) until taken.
//
// # Bad records
//
// With BadRatio > 0 that fraction of records is broken, the kind drawn uniformly from BadKinds (all
// kinds by default): truncated JSON, a JSON array or string instead of an object, no card_id (and
// no Kafka key), no amount, "amount":"abc", a negative amount, a bare NaN, an event time in 1970 or
// 2100 or "yesterday", a valid record padded to HugeBytes with a "note" field, and invalid UTF-8
// bytes inside the merchant string. Record.Bad names the kind.
//
// # Producing
//
// Run produces the records to a transactions topic (keyed by card id, the record timestamp being the
// clock's now) and the due labels to a labels topic, paced in 10 ms batches at a given rate or as
// fast as the client accepts them, recycling records and their buffers in the produce promises.
// EnsureTopics creates missing topics.
package gen
