#include <gtest/gtest.h>

#include "repl/token_bucket.h"

namespace hrl {
namespace {

using namespace std::chrono_literals;

TEST(TokenBucket, HoldsTheRateOverTime) {
  auto t0 = TokenBucket::Clock::time_point{};
  TokenBucket b(10 << 20, t0);  // 10 MiB/s, a second of burst
  EXPECT_EQ(b.take(10 << 20, t0), 0ns);             // the burst goes at once
  EXPECT_EQ(b.take(5 << 20, t0), 500ms);            // then half a second's debt
  EXPECT_EQ(b.take(5 << 20, t0 + 500ms), 500ms);    // paid back, and in debt again
  EXPECT_EQ(b.take(0, t0 + 1000ms), 0ns);           // even
  EXPECT_EQ(b.take(1 << 20, t0 + 3000ms), 0ns);     // idle time refills, up to the burst only
  EXPECT_EQ(b.take(10 << 20, t0 + 3000ms), 100ms);
  // Over a long run the bytes taken match the rate.
  TokenBucket c(1 << 20, t0);
  auto now = t0;
  for (int i = 0; i < 100; i++) now += c.take(256 << 10, now);
  EXPECT_NEAR(std::chrono::duration<double>(now - t0).count(), 24.0, 0.01);  // 25 MiB at 1 MiB/s, 1 MiB burst
}

TEST(TokenBucket, ZeroMeansUnlimited) {
  TokenBucket b(0);
  EXPECT_EQ(b.take(1ull << 40), 0ns);
}

}  // namespace
}  // namespace hrl
