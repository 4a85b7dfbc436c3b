// Software RAID (/proc/mdstat) and ZFS pools (`zpool list -Hp`), parsed from text.
#include <charconv>
#include <regex>
#include <sstream>

#include "drivers/storage/storage_internal.h"

namespace edged::storage::detail {
namespace {

std::uint64_t ToU64(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::vector<std::string> Words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> w;
  for (std::string s; in >> s;) w.push_back(std::move(s));
  return w;
}

// The status lines below "mdX : ..." until the next array or a blank line.
void ParseArrayDetail(const std::string& line, MdArray& md) {
  static const std::regex kBlocks(R"(^\s*(\d+) blocks)");
  static const std::regex kDisks(R"(\[(\d+)/(\d+)\])");
  static const std::regex kSync(R"((resync|recovery|check|reshape)\s*=\s*[\d.]+%\s*\((\d+)/(\d+)\))");
  std::smatch m;
  if (std::regex_search(line, m, kBlocks)) {
    md.blocks = ToU64(m[1].str());
    md.blocks_synced = md.blocks;
  }
  if (std::regex_search(line, m, kDisks)) {
    md.disks_required = static_cast<int>(ToU64(m[1].str()));
    md.disks_active = static_cast<int>(ToU64(m[2].str()));
  }
  if (std::regex_search(line, m, kSync)) {
    const std::string action = m[1].str();
    md.state = action == "recovery" ? "recovering" : action;
    const std::uint64_t done = ToU64(m[2].str());
    const std::uint64_t total = ToU64(m[3].str());
    // The sync line counts per-member blocks; scale to the array so blocks_synced/blocks is the progress.
    if (total > 0) md.blocks_synced = static_cast<std::uint64_t>(static_cast<long double>(md.blocks) * done / total);
  }
}

}  // namespace

std::vector<MdArray> ParseMdstat(std::string_view text) {
  // md1 : active raid5 sdd1[3](F) sdc1[1] sdb2[0]
  //       2093056 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [UU_]
  //       [=====>...............]  recovery = 28.7% (300416/1046528) finish=0.1min speed=100000K/sec
  static const std::regex kHeader(R"(^(md[A-Za-z0-9_]+)\s*:\s*(.*)$)");
  std::vector<MdArray> arrays;
  std::istringstream lines{std::string(text)};
  std::string line;
  MdArray* current = nullptr;
  int members = 0;
  auto finish = [&] {
    if (current == nullptr) return;
    if (current->disks_required == 0 && current->state != "inactive") {
      // raid0/linear print no [n/m]: every member that has not failed is needed.
      current->disks_required = members - current->disks_failed - current->disks_spare;
      current->disks_active = current->disks_required;
    }
    current->degraded = current->state != "inactive" && current->disks_active < current->disks_required;
    current = nullptr;
  };
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_match(line, m, kHeader)) {
      finish();
      const std::vector<std::string> w = Words(m[2].str());
      if (w.empty() || (w[0] != "active" && w[0] != "inactive")) continue;
      MdArray& md = arrays.emplace_back();
      current = &md;
      members = 0;
      md.name = m[1].str();
      md.state = w[0];
      for (std::size_t i = 1; i < w.size(); ++i) {
        const std::string& word = w[i];
        if (word.front() == '(') continue;  // (auto-read-only), (read-only)
        const auto bracket = word.find('[');
        if (bracket == std::string::npos) {
          if (md.level.empty() && md.state == "active") md.level = word;
          continue;
        }
        ++members;
        if (word.find("(F)") != std::string::npos) ++md.disks_failed;
        if (word.find("(S)") != std::string::npos) ++md.disks_spare;
      }
      continue;
    }
    if (current == nullptr) continue;
    if (line.find_first_not_of(" \t") == std::string::npos) {
      finish();
      continue;
    }
    ParseArrayDetail(line, *current);
  }
  finish();
  return arrays;
}

std::vector<ZfsPool> ParseZpoolList(std::string_view text) {
  std::vector<ZfsPool> pools;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    const std::vector<std::string> w = Words(line);
    if (w.size() != 5) continue;
    ZfsPool p;
    p.name = w[0];
    p.health = w[1];
    p.size_bytes = ToU64(w[2]);  // "-" (unavailable pool) stays 0
    p.allocated_bytes = ToU64(w[3]);
    p.free_bytes = ToU64(w[4]);
    pools.push_back(std::move(p));
  }
  return pools;
}

}  // namespace edged::storage::detail
