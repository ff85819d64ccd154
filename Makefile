# ctibridge developer targets. The test command CI runs is README's: go test -race ./...
.PHONY: test demo
test:
	go test -race ./...

demo:
	go run ./cmd/ctibridge demo

# Versioned linux tarballs, .debs and SHA256SUMS in dist/ (packaging/build.sh;
# needs gcc; arm64 too when aarch64-linux-gnu-gcc is installed).
.PHONY: release
release:
	packaging/build.sh dist

BENCH_FLAGS ?=

.PHONY: bench bench-short bench-profile
bench:
	go run ./cmd/ctibench --out bench-out $(BENCH_FLAGS)

bench-short:
	go run ./cmd/ctibench --out bench-out --backlog 50000 --live 2000 --duration 5s --max-calls 1500 $(BENCH_FLAGS)

# CPU and allocation profiles, and the heap with every call live, of the
# same components wired in-process (serve has no pprof hook). Pick the
# pipeline with PROFILE, e.g. PROFILE=Pipeline/freeswitch/blast/FULL; the
# profiles include the harness preparing its calls, so read the adapter,
# bridge, store and webhooks entries (pprof -focus 'ctibridge/(ami|esl|bridge|store|webhooks)\.').
PROFILE ?= Pipeline/asterisk/steady/FULL
bench-profile:
	mkdir -p bench-out
	go test -run '^$$' -bench '$(PROFILE)' -benchtime 2000x -cpuprofile bench-out/cpu.prof -memprofile bench-out/mem.prof -o bench-out/bench.test ./bench/
	CTIBENCH_HEAP=$(CURDIR)/bench-out/heap-live.prof go test -run '^$$' -bench '$(subst /steady/,/held/,$(subst /blast/,/held/,$(PROFILE)))' -benchtime 2000x ./bench/
	go tool pprof -top -cum -nodecount 40 -focus 'ctibridge/(ami|esl|bridge|store|webhooks)[.]' bench-out/bench.test bench-out/cpu.prof
	go tool pprof -sample_index=inuse_space -top -nodecount 20 bench-out/bench.test bench-out/heap-live.prof

# The fault suite's long versions (hundreds of SIGKILLs, a 1M-event backlog,
# a 60 s CRM outage) and their table. Override sizes, e.g.
#   make faults FAULTS_ENV="CTIBRIDGE_FAULTS_KILLS=50 CTIBRIDGE_FAULTS_BACKLOG=200000"
FAULTS_ENV ?=
.PHONY: faults faults-short
# The table is removed first: a run that fails before writing it must not
# print the last run's.
faults:
	mkdir -p faults-out
	rm -f faults-out/table.txt
	env CTIBRIDGE_FAULTS_LONG=1 CTIBRIDGE_FAULTS_OUT=$(CURDIR)/faults-out/table.txt $(FAULTS_ENV) \
		go test -count=1 -timeout 6h ./faults; status=$$?; [ ! -f faults-out/table.txt ] || cat faults-out/table.txt; exit $$status

# The CI sizes, with the table.
faults-short:
	mkdir -p faults-out
	rm -f faults-out/table.txt
	env CTIBRIDGE_FAULTS_OUT=$(CURDIR)/faults-out/table.txt go test -count=1 -timeout 30m ./faults; status=$$?; [ ! -f faults-out/table.txt ] || cat faults-out/table.txt; exit $$status

# Every fuzz target in turn, FUZZTIME each (go test -fuzz takes one target
# per run). New crashers land in the package's testdata/fuzz and fail the
# normal tests from then on.
FUZZTIME ?= 2m
.PHONY: fuzz
fuzz:
	grep -r --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*' . | sed 's|^\(.*\)/[^/]*:func \(.*\)|\1 \2|' | sort -u | \
	while read pkg target; do \
		echo "== $$pkg $$target ($(FUZZTIME))"; \
		go test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done
