// A token bucket: the bandwidth limit of a volume. take(n) answers how long
// to wait before n bytes may go; the clock is a parameter so the arithmetic
// is tested without sleeping.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace hrl {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  // rate in bytes per second (0: unlimited); the burst is one second's worth.
  explicit TokenBucket(uint64_t rate, Clock::time_point now = Clock::now())
      : rate_(rate), tokens_(static_cast<double>(rate)), last_(now) {}

  uint64_t rate() const { return rate_; }

  // Takes n bytes' worth of tokens, going into debt if needed, and returns
  // how long the caller must wait before sending them.
  std::chrono::nanoseconds take(uint64_t n, Clock::time_point now = Clock::now()) {
    if (rate_ == 0) return std::chrono::nanoseconds(0);
    double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(static_cast<double>(rate_), tokens_ + elapsed * static_cast<double>(rate_));
    tokens_ -= static_cast<double>(n);
    if (tokens_ >= 0) return std::chrono::nanoseconds(0);
    return std::chrono::nanoseconds(static_cast<int64_t>(-tokens_ / static_cast<double>(rate_) * 1e9));
  }

 private:
  uint64_t rate_;
  double tokens_;
  Clock::time_point last_;
};

// Takes n bytes from the bucket and sleeps until they may go, in steps so a
// stop request ends the wait early.
inline void wait_for_tokens(TokenBucket& bucket, uint64_t n, const std::atomic<bool>& stop) {
  using namespace std::chrono_literals;
  for (auto wait = bucket.take(n); wait.count() > 0 && !stop;) {
    auto step = std::min<std::chrono::nanoseconds>(wait, 50ms);
    std::this_thread::sleep_for(step);
    wait -= step;
  }
}

}  // namespace hrl
