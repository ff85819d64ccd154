# ctibridge developer targets. The test command CI runs is README's: go test -race ./...
.PHONY: test demo
test:
	go test -race ./...

demo:
	go run ./cmd/ctibridge demo

BENCH_FLAGS ?=

.PHONY: bench bench-short bench-profile
bench:
	go run ./cmd/ctibench --out bench-out $(BENCH_FLAGS)

bench-short:
	go run ./cmd/ctibench --out bench-out --backlog 50000 --live 2000 --duration 5s --max-calls 1500 $(BENCH_FLAGS)

# CPU profile of the same components wired in-process (serve has no pprof hook).
bench-profile:
	mkdir -p bench-out
	go test -run '^$$' -bench 'Pipeline/asterisk/steady/FULL' -benchtime 2000x -cpuprofile bench-out/cpu.prof -o bench-out/bench.test ./bench/
	go tool pprof -top -cum -nodecount 40 bench-out/bench.test bench-out/cpu.prof
