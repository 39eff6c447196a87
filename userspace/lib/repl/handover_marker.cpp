#include "repl/handover_marker.h"

#include <fcntl.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "io/env.h"
#include "io/file.h"

namespace hrl {

namespace {

std::string directory_of(const std::string& path) { return std::filesystem::path(path).parent_path().string(); }

}  // namespace

void save_handover_marker(const std::string& path, const HandoverMarker& m) {
  replace_file(path, nlohmann::json{{"generation", m.generation}, {"seq", m.seq}}.dump() + "\n");
}

std::optional<HandoverMarker> load_handover_marker(const std::string& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  try {
    File f = File::open(path, O_RDONLY);
    std::string text(f.size(), '\0');
    f.read_at(std::as_writable_bytes(std::span(text.data(), text.size())), 0);
    auto j = nlohmann::json::parse(text);
    return HandoverMarker{j.at("generation"), j.at("seq")};
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": a damaged handover mark (" + e.what() + ")");
  }
}

void remove_handover_marker(const std::string& path) {
  if (!std::filesystem::exists(path)) return;
  remove_file(path);
  sync_directory(directory_of(path));
}

}  // namespace hrl
