// Command container starts a Kafka broker in a Docker container for streamd's tests, prints the
// KAFKA_BROKERS line that points test/kafkatest at it, and keeps it running until interrupted:
//
//	cd test/kafkatest/container && go run .
//	KAFKA_BROKERS=127.0.0.1:32771
//	# in another shell: KAFKA_BROKERS=127.0.0.1:32771 make test
//
// It is a module of its own so that testcontainers-go, and the Docker client, OpenTelemetry and gRPC
// it brings, stay out of streamd's module graph. SIGINT or SIGTERM removes the container; if the
// command dies without, testcontainers' reaper removes it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tckafka "github.com/testcontainers/testcontainers-go/modules/kafka"
)

// image is the broker the tests ran against when the harness started containers itself.
const image = "confluentinc/confluent-local:7.5.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kafkatest/container:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c, err := start(startCtx)
	if err != nil {
		return fmt.Errorf("start %s (is a Docker engine running?): %w", image, err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := testcontainers.TerminateContainer(c, testcontainers.StopContext(ctx)); err != nil {
			fmt.Fprintln(os.Stderr, "kafkatest/container: remove the container:", err)
		}
	}()
	brokers, err := c.Brokers(startCtx)
	if err != nil {
		return fmt.Errorf("broker address: %w", err)
	}
	fmt.Printf("KAFKA_BROKERS=%s\n", strings.Join(brokers, ","))
	<-ctx.Done()
	return nil
}

// start runs the container. testcontainers panics when it finds no Docker engine at all; that is
// an error here like any other.
func start(ctx context.Context) (c *tckafka.KafkaContainer, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	return tckafka.Run(ctx, image, tckafka.WithClusterID("streamd-test"))
}
