package redislimit_test

import (
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/limiter/redislimit"
	"github.com/imagegen-go/imagegen/provider/openai"
)

// Every process that shares the OpenAI organisation's quota runs the same
// setup against the same Redis.
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	limiter, err := redislimit.New(rdb, redislimit.Options{})
	if err != nil {
		log.Fatal(err)
	}
	tier3, err := imagegen.OpenAITier(3)
	if err != nil {
		log.Fatal(err)
	}
	tier3.MaxInFlight = 20
	if err := limiter.SetLimits(imagegen.LimitKey{Provider: "openai"}, tier3); err != nil {
		log.Fatal(err)
	}

	p, err := openai.New(openai.Options{APIKey: "sk-..."})
	if err != nil {
		log.Fatal(err)
	}
	client, err := imagegen.New(imagegen.WithProvider(p), imagegen.WithLimiter(limiter))
	if err != nil {
		log.Fatal(err)
	}
	_ = client
}
