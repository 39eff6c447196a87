#include "repl/replica_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "io/file.h"
#include "log/superblock.h"

namespace hrl {

std::optional<ReplicaState> ReplicaState::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno(errno, "open " + path);
  }
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    ReplicaState s;
    std::string uuid = j.at("uuid");
    for (size_t i = 0, k = 0; i < uuid.size() && k < 16; i++) {
      if (uuid[i] == '-') continue;
      s.uuid[k++] = static_cast<uint8_t>(std::stoi(uuid.substr(i, 2), nullptr, 16));
      i++;
    }
    s.generation = j.at("generation");
    s.data_sectors = j.at("data_sectors");
    s.durable_seq = j.at("durable_seq");
    s.durable_csum = j.value("durable_csum", uint64_t{0});
    s.consistent_seq = j.value("consistent_seq", uint64_t{0});
    if (j.contains("resync")) {
      const auto& r = j["resync"];
      s.resync = ResyncCheckpoint{r.at("mode"), r.at("regions"), r.at("reason"), r.at("take_seq"), r.at("cursor"),
                                  r.value("started_ns", uint64_t{0})};
    }
    s.adopt_newer_generation = j.value("adopt_newer_generation", false);
    s.history_complete = j.value("history_complete", false);
    if (j.contains("promoted")) {
      const auto& p = j["promoted"];
      s.promoted = Promotion{p.at("seq"), p.at("at_ns"), p.at("complete"), p.at("committed")};
    }
    if (j.contains("takeover")) s.takeover = Takeover{j["takeover"].at("in_sync")};
    return s;
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": damaged replica state (" + e.what() + ")");
  }
}

void ReplicaState::save(const std::string& path) const {
  nlohmann::json j{{"uuid", uuid_string(uuid)},
                   {"generation", generation},
                   {"data_sectors", data_sectors},
                   {"durable_seq", durable_seq},
                   {"durable_csum", durable_csum},
                   {"consistent_seq", consistent_seq}};
  if (resync)
    j["resync"] = {{"mode", resync->mode},         {"regions", resync->regions}, {"reason", resync->reason},
                   {"take_seq", resync->take_seq}, {"cursor", resync->cursor},   {"started_ns", resync->started_ns}};
  if (adopt_newer_generation) j["adopt_newer_generation"] = true;
  j["history_complete"] = history_complete;
  if (promoted)
    j["promoted"] = {{"seq", promoted->seq},
                     {"at_ns", promoted->at_ns},
                     {"complete", promoted->complete},
                     {"committed", promoted->committed}};
  if (takeover) j["takeover"] = {{"in_sync", takeover->in_sync}};
  replace_file(path, j.dump(2) + "\n");
}

}  // namespace hrl
