// shardc-run's checkpoints (--save-state/--checkpoint-dir, --load-state/--resume): the State
// buffers of every rank in a new step directory, committed across ranks (each rank writes its
// files, all meet at a barrier, then rank 0 replaces DIR/manifest.json and prunes old steps),
// and loaded either rank by rank (the artifact that saved them) or resharded from whatever
// saved chunks cover each of this rank's (another mesh or artifact, as
// torch.distributed.checkpoint). Format: Checkpoint.h, docs/cli.md, docs/training.md.
#include "Checkpoint.h"
#include "RunCli.h"

#include "shardc/runtime/Npz.h"
#include "shardc/runtime/Session.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

namespace shardc::runcli {

using namespace shardc::ckpt;

namespace {

std::string typeText(DType t, const std::vector<int64_t> &shape) {
  return std::string(dtypeName(t)) + " " + shapeString(shape);
}

// The State buffers, in manifest order.
std::vector<const BufferDesc *> stateBuffers(const Artifact &a) {
  std::vector<const BufferDesc *> out;
  for (const BufferDesc &b : a.buffers)
    if (b.storage == Storage::State)
      out.push_back(&b);
  return out;
}

// How a State buffer is saved: f16/bf16 as f32 (exact), every other dtype as itself.
DType savedDType(DType t) { return t == DType::F16 || t == DType::BF16 ? DType::F32 : t; }

// Saved bytes (savedDType) back to the buffer's dtype: f32 to f16/bf16 is exact for values
// saved from them.
std::vector<uint8_t> toStored(const BufferDesc &b, std::vector<uint8_t> bytes) {
  if (savedDType(b.dtype) == b.dtype)
    return bytes;
  size_t n = bytes.size() / 4;
  std::vector<uint8_t> out(n * 2);
  for (size_t i = 0; i < n; ++i) {
    float v;
    std::memcpy(&v, bytes.data() + i * 4, 4);
    uint16_t h = b.dtype == DType::BF16 ? f32ToBf16(v) : f32ToF16(v);
    std::memcpy(out.data() + i * 2, &h, 2);
  }
  return out;
}

// The step number of a step directory's name (step-00000012 or step-00000012.1), or -1.
int64_t stepOf(const std::string &name) {
  if (name.rfind("step-", 0) != 0 || name.size() < 6)
    return -1;
  char *end = nullptr;
  long long v = std::strtoll(name.c_str() + 5, &end, 10);
  return end != name.c_str() + 5 && (*end == 0 || *end == '.') ? v : -1;
}

// After rank 0 committed `kept` (the previous commit `previous` stays as well): removes the
// other step directories up to its step (later ones may be another rank's next save).
void prune(const std::string &dir, const std::string &kept, const std::string &previous) {
  std::error_code ec;
  int64_t upTo = stepOf(kept);
  for (const auto &e : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    int64_t step = stepOf(name);
    if (step >= 0 && step <= upTo && name != kept && name != previous && e.is_directory(ec))
      std::filesystem::remove_all(e.path(), ec);
  }
}

// Each rank's part of a save: its arrays and metadata in the step directory.
std::string writeRankFiles(const Artifact &artifact, Session &session, const std::string &stepDir, int64_t steps) {
  std::vector<HostTensor> tensors;
  std::map<std::string, int> names;
  for (const BufferDesc *b : stateBuffers(artifact)) {
    if (b->name.empty() || names[b->name]++)
      return "the artifact's state buffer " + std::to_string(b->id) + " ('" + b->name +
             "') has no name of its own to save it by";
    HostTensor t{b->name, b->dtype, b->shape, {}};
    if (std::string err = session.executor().readState(b->id, t.data); !err.empty())
      return err;
    tensors.push_back(widenToF32(t));
  }
  const int64_t rank = session.rank();
  const std::string npz = rankPath(stepDir, rank, "npz");
  if (std::string err = writeNpz(npz + ".tmp", tensors); !err.empty())
    return err;
  if (std::string err = commitFile(npz + ".tmp", npz); !err.empty())
    return err;
  RankMeta meta{rank, artifact.worldSize, steps, hex(artifact.manifestChecksum), artifact.deviceMesh.describe(),
                stateSlices(artifact, rank)};
  return writeFileAtomic(rankPath(stepDir, rank, "json"), rankMetaJson(meta));
}

} // namespace

std::string saveTrainState(const Options &o, const Artifact &artifact, Session &session, int64_t stepsDone,
                           bool rankIsProcess) {
  const std::string &dir = o.saveState;
  const std::string what = "--save-state " + dir + ": ";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return what + "cannot create the directory: " + ec.message();
  // A new directory per save; never the committed one (a run resumed from step N of DIR that
  // saves step N again writes step-N.1).
  Manifest old;
  bool hadNone = false;
  std::string committed = readManifest(dir, old, &hadNone).empty() ? old.stepDir : "";
  std::string name = stepDirName(stepsDone);
  if (name == committed)
    name += ".1";
  const std::string stepDir = (std::filesystem::path(dir) / name).string();
  std::filesystem::create_directories(stepDir, ec);
  if (ec)
    return what + "cannot create " + stepDir + ": " + ec.message();
  if (std::string err = writeRankFiles(artifact, session, stepDir, stepsDone); !err.empty())
    return what + err;
  if (o.hooks && o.hooks->beforeCommit)
    if (std::string err = o.hooks->beforeCommit(session.rank(), stepsDone, rankIsProcess); !err.empty())
      return err;
  // Every rank's files are on disk before rank 0 names them: a rank that dies before this
  // point leaves the manifest naming the previous step.
  Communicator &comm = session.executor().communicator();
  const CommGroup *world = nullptr;
  std::string err = worldGroup(comm, world);
  if (err.empty()) {
    auto stepTimeout = comm.timeout();
    comm.setTimeout(std::max(stepTimeout, std::chrono::milliseconds(120000)));
    err = comm.barrier(*world);
    comm.setTimeout(stepTimeout);
  }
  if (!err.empty())
    return what + name + " not committed (" + (committed.empty() ? "no earlier checkpoint" : committed + " stays") +
           "): " + err;
  if (session.rank() != 0)
    return "";
  Manifest m{name, std::filesystem::path(artifact.path).filename().string(), hex(artifact.manifestChecksum),
             artifact.deviceMesh.describe(), artifact.worldSize, stepsDone};
  if (std::string e = writeFileAtomic(manifestPath(dir), manifestJson(m, artifact.deviceMesh)); !e.empty())
    return what + e;
  prune(dir, name, committed);
  return "";
}

std::string loadTrainState(const Options &o, const Artifact &artifact, Session &session, int64_t &stepsDone) {
  Manifest m;
  if (std::string err = readManifest(o.loadState, m); !err.empty())
    return err;
  const std::string stepDir = (std::filesystem::path(o.loadState) / m.stepDir).string();
  stepsDone = m.steps;
  std::vector<const BufferDesc *> buffers = stateBuffers(artifact);
  const bool same = m.checksum == hex(artifact.manifestChecksum) && m.worldSize == artifact.worldSize;
  if (same) {
    // The artifact that saved it: this rank's own file, array by array.
    const std::string npz = rankPath(stepDir, session.rank(), "npz");
    std::vector<HostTensor> saved;
    if (std::string err = readNpz(npz, saved); !err.empty())
      return err;
    for (const HostTensor &t : saved)
      if (std::none_of(buffers.begin(), buffers.end(), [&](const BufferDesc *b) { return b->name == t.name; }))
        return npz + ": '" + t.name + "' is not a state buffer of " + artifact.path;
    for (const BufferDesc *b : buffers) {
      auto it = std::find_if(saved.begin(), saved.end(), [&](const HostTensor &t) { return t.name == b->name; });
      if (it == saved.end())
        return npz + ": state '" + b->name + "' is missing (" + std::to_string(saved.size()) +
               " arrays in the file, " + std::to_string(buffers.size()) + " state buffers in " + artifact.path + ")";
      DType want = savedDType(b->dtype);
      if (it->dtype != want || it->shape != b->shape)
        return npz + ": state '" + b->name + "': the artifact's is " + typeText(b->dtype, b->shape) +
               (want != b->dtype ? " (saved as f32)" : "") + ", the file's " + typeText(it->dtype, it->shape);
      std::vector<uint8_t> bytes = toStored(*b, std::move(it->data));
      if (std::string err = session.executor().writeState(b->id, bytes.data(), bytes.size()); !err.empty())
        return npz + ": " + err;
    }
    return "";
  }
  // Another mesh or artifact: each state assembled from the saved chunks of its logical tensor.
  std::vector<StateSlice> mine = stateSlices(artifact, session.rank());
  const std::string from = manifestPath(o.loadState) + ": saved by '" + m.artifact + "' on " +
                           std::to_string(m.worldSize) + " ranks (mesh " + m.mesh + "), loaded into " + artifact.path +
                           " on " + std::to_string(artifact.worldSize) + " (mesh " + artifact.deviceMesh.describe() + ")";
  for (const StateSlice &s : mine)
    if (!s.located)
      return from + ": state '" + s.name + "' has no known place in a logical tensor, so it loads only into the "
             "artifact that saved it";
  std::vector<RankMeta> metas;
  if (std::string err = readRankMetas(stepDir, m.worldSize, metas); !err.empty())
    return err;
  std::set<std::string> wanted;
  for (const StateSlice &s : mine)
    wanted.insert(s.global);
  for (const RankMeta &r : metas)
    for (const StateSlice &s : r.states)
      if (s.located && s.kind != "other" && !wanted.count(s.global))
        return from + ": the checkpoint's '" + s.global + "' is not a state of " + artifact.path;
  std::vector<std::vector<uint8_t>> bytes;
  if (std::string err = assemble(stepDir, metas, mine, bytes); !err.empty())
    return err;
  for (size_t i = 0; i < buffers.size(); ++i) {
    std::vector<uint8_t> stored = toStored(*buffers[i], std::move(bytes[i]));
    if (std::string err = session.executor().writeState(buffers[i]->id, stored.data(), stored.size()); !err.empty())
      return stepDir + ": " + err;
  }
  return "";
}

} // namespace shardc::runcli
