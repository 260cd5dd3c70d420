// Writes the seed corpora that are easier made by the codecs themselves:
// stored records (every kind, old and extended message layouts) and
// msgpack client frames (the JSON seeds, re-encoded).
// usage: fuzz_make_seeds <repo>/fuzz/corpus   (run by hand; output committed)
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "engine/frame.hpp"
#include "storage/record.hpp"

namespace fs = std::filesystem;

namespace {

void put(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_make_seeds CORPUS_DIR\n";
    return 2;
  }
  using namespace imengine;
  fs::path root = argv[1];
  message plain;
  plain.conv = "dm:alice:bob";
  plain.seq = 1;
  plain.mid = 42;
  plain.from = "alice";
  plain.device = "phone";
  plain.cmid = "c1";
  plain.body = "hi";
  plain.ts = 1700000000000;
  message rich = plain;
  rich.conv = "g:team";
  rich.ex = R"({"k":[1,2]})";
  rich.prio = 1;
  rich.mentions = {"bob", "@all"};
  rich.recalled_by = 9;
  rich.edited = 1700000001000;
  rich.edits = {5, 7};
  auto rec = root / "record";
  put(rec, "message_plain", storage::encode(plain));
  put(rec, "message_rich", storage::encode(rich));
  put(rec, "conv_meta", storage::encode(storage::conv_meta{2, 10, 9, 1, 2}));
  put(rec, "user_conv", storage::encode(storage::user_conv{3, 4, 0, true}));
  put(rec, "user_meta", storage::encode(storage::user_meta{7, {{"phone", 5}, {"web", 7}}}));
  put(rec, "dedupe", storage::encode(storage::dedupe_entry{"dm:a:b", 3, 77, 1, 2}));
  for (const auto& entry : fs::directory_iterator(root / "frame_json")) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    auto f = decode_frame(text, encoding::json);
    if (f)
      put(root / "frame_msgpack", entry.path().stem().string() + ".mp",
          encode_frame(*f, encoding::msgpack));
  }
  return 0;
}
