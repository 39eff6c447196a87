// hrld's configuration: the resync settings of a primary volume, and the
// clear errors a wrong file gets.
#include <gtest/gtest.h>

#include <fstream>

#include "config.h"
#include "test_support.h"

namespace hrl {
namespace {

TEST(ResyncWindow, InsideAndOutsideIncludingPastMidnight) {
  EXPECT_TRUE(in_window("22:00-06:00", 23 * 60));
  EXPECT_TRUE(in_window("22:00-06:00", 5 * 60 + 59));
  EXPECT_FALSE(in_window("22:00-06:00", 6 * 60));
  EXPECT_FALSE(in_window("22:00-06:00", 12 * 60));
  EXPECT_TRUE(in_window("09:30-17:00", 9 * 60 + 30));
  EXPECT_FALSE(in_window("09:30-17:00", 17 * 60));
  EXPECT_TRUE(in_window("00:00-00:00", 123)) << "from a time to itself: the whole day";
  for (const char* bad : {"22-06", "25:00-06:00", "10:00-11:60", "10:00-11:00x", ""})
    EXPECT_THROW(in_window(bad, 0), std::runtime_error) << bad;
}

class HrldConfig : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::string path = dir.file("hrld.toml");
  void write(const std::string& volume) {
    std::ofstream(path) << "[node]\nname = \"a\"\ncert = \"a.pem\"\nkey = \"a.key\"\nca = \"ca.pem\"\n"
                        << "[[volume]]\nname = \"db0\"\nrole = \"primary\"\nlog = \"/dev/x\"\npeer = \"b:1\"\n"
                        << "peer_name = \"b\"\n"
                        << volume;
  }
  std::string error() {
    try {
      load_config(path);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "no error";
  }
};

TEST_F(HrldConfig, ResyncSettings) {
  write("device = \"hrl-db0\"\nresync_bandwidth = \"100M\"\nresync_window = \"22:00-06:00\"\n");
  Config c = load_config(path);
  EXPECT_EQ(c.volumes[0].data, "/dev/mapper/hrl-db0") << "the dm device is what a resync reads";
  EXPECT_EQ(c.volumes[0].resync_bandwidth, 100ull << 20);
  EXPECT_EQ(c.volumes[0].resync_window, "22:00-06:00");
  write("data = \"/dev/sdb\"\n");
  EXPECT_EQ(load_config(path).volumes[0].data, "/dev/sdb");
}

TEST_F(HrldConfig, WrongResyncSettingsAreRefusedByName) {
  write("device = \"hrl-db0\"\nresync_window = \"late\"\n");
  EXPECT_NE(error().find("resync_window: 'late' is not HH:MM-HH:MM"), std::string::npos) << error();
  write("");
  EXPECT_NE(error().find("'data' (the volume's data device) is required"), std::string::npos) << error();
}

// A site that may change roles carries both roles' settings; history and
// retention have defaults an operator of Site Recovery would expect.
TEST_F(HrldConfig, BothRolesAndRetention) {
  write("data = \"/dev/sdb\"\nlisten = \"0.0.0.0:7789\"\nreplica = \"/dev/sdb\"\nstate_dir = \"/var/lib/hrl\"\n");
  VolumeConfig v = load_config(path).volumes[0];
  EXPECT_EQ(missing_for_primary(v), "");
  EXPECT_EQ(missing_for_secondary(v), "") << "a primary that can become the secondary";
  EXPECT_TRUE(v.history);
  EXPECT_EQ(v.point_interval, 300);
  EXPECT_EQ(v.retention_hours, 24);
  EXPECT_EQ(v.retention_bytes, 0u);
  write("data = \"/dev/sdb\"\n");
  EXPECT_NE(missing_for_secondary(load_config(path).volumes[0]).find("'listen' is missing"), std::string::npos);
  write("data = \"/dev/sdb\"\nretention_size = \"100M\"\nhistory_segment = \"64M\"\n");
  EXPECT_NE(error().find("retention_size must hold at least 4 history segments"), std::string::npos) << error();
  write("data = \"/dev/sdb\"\nretention_size = \"1G\"\nhistory_segment = \"16M\"\nretention_hours = 0\n");
  v = load_config(path).volumes[0];
  EXPECT_EQ(v.retention_bytes, 1ull << 30);
  EXPECT_EQ(v.history_segment, 16ull << 20);
  EXPECT_EQ(v.retention_hours, 0);
  write("data = \"/dev/sdb\"\nretention_size = \"lots\"\n");
  EXPECT_NE(error().find("retention_size 'lots' is not a number"), std::string::npos) << error();
  // History leaves 10% of its file system free unless told otherwise.
  write("data = \"/dev/sdb\"\n");
  v = load_config(path).volumes[0];
  EXPECT_DOUBLE_EQ(v.history_reserve_fraction, 0.10);
  EXPECT_EQ(v.history_reserve_bytes, 0u);
  write("data = \"/dev/sdb\"\nhistory_reserve = \"25%\"\n");
  EXPECT_DOUBLE_EQ(load_config(path).volumes[0].history_reserve_fraction, 0.25);
  write("data = \"/dev/sdb\"\nhistory_reserve = \"20G\"\n");
  v = load_config(path).volumes[0];
  EXPECT_EQ(v.history_reserve_bytes, 20ull << 30);
  EXPECT_EQ(v.history_reserve_fraction, 0);
  write("data = \"/dev/sdb\"\nhistory_reserve = \"95%\"\n");
  EXPECT_NE(error().find("history_reserve '95%' is not a percentage from 0% to 90%"), std::string::npos) << error();
}

}  // namespace
}  // namespace hrl
