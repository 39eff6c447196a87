# hrl: one entry point. `make demo` shows it working, `make check` runs every test.
BUILD        ?= build
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 30
BUILD_TYPE   ?= RelWithDebInfo

.PHONY: all deps userspace driver check unit fuzz vm-check crash-check bench demo deb clean

all: userspace driver

deps:
	@tools/install-deps

userspace: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(BUILD)

# dm-hrl.ko with W=1: against KDIR if given, else Debian 12's 6.1 and 6.12 kernels.
driver: deps
	@tools/build-driver $(KDIR)

# Every test: unit and integration (ctest), the fuzz targets for FUZZ_SECONDS,
# the VM tier, the demo in its fast mode, the packages. Prints one summary line at the end.
check: userspace
	@tools/run-checks $(BUILD) $(FUZZ_BUILD) $(FUZZ_SECONDS)

unit: userspace
	@cd $(BUILD) && ctest --output-on-failure -j2 --timeout 600

fuzz: deps
	@cmake -S . -B $(FUZZ_BUILD) -G Ninja -DHRL_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
	@cmake --build $(FUZZ_BUILD)
	@mkdir -p $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/corpus-protocol
	$(FUZZ_BUILD)/tests/fuzz/fuzz_log_reader -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(FUZZ_BUILD)/corpus tests/fuzz/corpus
	$(FUZZ_BUILD)/tests/fuzz/fuzz_protocol -max_total_time=$$(( $(FUZZ_SECONDS) / 2 )) -print_final_stats=1 \
	    $(FUZZ_BUILD)/corpus-protocol tests/fuzz/corpus-protocol

# The VM tier: dm-hrl in Debian's 6.1 and 6.12 kernels under qemu.
vm-check: userspace
	@python3 tests/vm/vmtest.py --build $(BUILD)

# The crash-state explorer at length: power losses of the primary built from
# recorded block I/O, thousands of states on each kernel (tests/vm/explore.py;
# CRASH_SEED=N replays a run). make check explores eight per kernel.
CRASH_RECORDINGS ?= 6
CRASH_STATES ?= 200
crash-check: userspace
	@python3 tests/vm/explore.py --build $(BUILD) --recordings $(CRASH_RECORDINGS) --states $(CRASH_STATES) \
	    --random 30 $(if $(CRASH_SEED),--seed $(CRASH_SEED))

bench: userspace
	@bench/log-reader.sh $(BUILD)
	@python3 bench/vm-targets.py $(BUILD)
	@bench/replication.sh $(BUILD)
	@bench/resync.sh $(BUILD)
	@bench/history.sh $(BUILD)

# hrl on one qemu guest, step by step: dm-hrl under ext4, two hrld, status,
# resync, an app-consistent point, a test failover, the checksums compared.
demo: userspace
	@tools/demo $(BUILD)

# hrl and hrl-dkms in $(BUILD)/deb, checked by lintian.

deb:
	@tools/build-deb $(BUILD)

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
