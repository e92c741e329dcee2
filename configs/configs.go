// Package configs holds the example pipelines, embedded so that `streamd demo` runs the same file a
// user reads in this directory, wherever the binary is.
package configs

import _ "embed"

// FraudPipeline is configs/fraud-pipeline.yaml: the example pipeline the demo runs.
//
//go:embed fraud-pipeline.yaml
var FraudPipeline []byte
