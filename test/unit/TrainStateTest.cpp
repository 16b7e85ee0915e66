// Training state (Storage::State): buffers of the persistent block that runs read and write
// and that keep their value from run to run; shardc-run's --steps, --save-state and
// --load-state over them (in process, through runMain), on one rank and on two threads.
#include "DeviceSimBackend.h"
#include "ManifestJson.h"
#include "RunMain.h"
#include "TempDir.h"

#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Backend.h"
#include "shardc/runtime/Executor.h"
#include "shardc/runtime/Npz.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <tuple>
#include <functional>
#include <sstream>

using namespace shardc::rt;

namespace {

// w0, the initial value of the state vector v (a weight, sharded over tp like v).
const std::vector<float> kW0 = {0.5f, -1.25f, 2.0f, 3.75f};

// A training-like step over state: a counter (count += 1, i64, zero at load), a vector
// v += x (f32, sharded over tp, set from the weight w0 by a load step), a bf16 accumulator
// m += 0.3 (rounds every run), and loss = sum(v) over all ranks. Outputs: count, v (gathered),
// loss, m. `producer` changes the manifest (another artifact); `stateEnd` the state block.
std::string trainManifest(int64_t tp, const std::string &producer = "unit test", int64_t stateEnd = 192) {
  std::string t = std::to_string(tp), local = "[" + std::to_string(4 / tp) + "]";
  std::string shard = R"(, "global_shape": [4], "shard": [{"dim": 0, "axes": ["tp"]}])";
  return R"({
  "format_version": 4, "producer": ")" + producer + R"(", "source": "state",
  "mesh_axes": [["tp", )" + t + R"(]], "world_size": )" + t + R"(,
  "weight_files": [{"path": "w.bin", "size": 16}],
  "arena_bytes": 512, "persistent_bytes": )" + std::to_string(stateEnd) + R"(,
  "buffers": [
    {"id": 0, "name": "x", "dtype": "f32", "shape": )" + local + R"(, "storage": "arena", "offset": 0)" + shard + R"(},
    {"id": 1, "name": "one", "dtype": "i64", "shape": [], "storage": "constant", "blob_offset": 0},
    {"id": 2, "name": "count", "dtype": "i64", "shape": [], "storage": "state", "offset": 0},
    {"id": 3, "name": "next", "dtype": "i64", "shape": [], "storage": "arena", "offset": 64},
    {"id": 4, "name": "w0", "dtype": "f32", "shape": )" + local + R"(, "storage": "weight", "file": 0,
     "file_offset": 0, "transform": "none")" + shard + R"(},
    {"id": 5, "name": "v", "dtype": "f32", "shape": )" + local + R"(, "storage": "state", "offset": 64)" + shard + R"(},
    {"id": 6, "name": "v_new", "dtype": "f32", "shape": )" + local + R"(, "storage": "arena", "offset": 128)" + shard + R"(},
    {"id": 7, "name": "v_all", "dtype": "f32", "shape": [4], "storage": "arena", "offset": 192},
    {"id": 8, "name": "loss", "dtype": "f32", "shape": [], "storage": "arena", "offset": 256},
    {"id": 9, "name": "half", "dtype": "bf16", "shape": [], "storage": "constant", "blob_offset": 64},
    {"id": 10, "name": "m", "dtype": "bf16", "shape": [], "storage": "state", "offset": 128},
    {"id": 11, "name": "m_new", "dtype": "bf16", "shape": [], "storage": "arena", "offset": 320}
  ],
  "inputs": [{"name": "x", "buffer": 0}],
  "outputs": [{"name": "count", "buffer": 3}, {"name": "v", "buffer": 7}, {"name": "loss", "buffer": 8},
              {"name": "m", "buffer": 11}],
  "load_steps": [{"op": "copy", "in": [4], "out": [5], "attrs": {}, "loc": "init @ v"}],
  "steps": [
    {"op": "formula", "in": [2, 1], "out": [3], "attrs": {"formula": "add"}, "loc": "count"},
    {"op": "copy", "in": [3], "out": [2], "attrs": {}, "loc": "count"},
    {"op": "formula", "in": [5, 0], "out": [6], "attrs": {"formula": "add"}, "loc": "v"},
    {"op": "copy", "in": [6], "out": [5], "attrs": {}, "loc": "v"},
    {"op": "all_gather", "in": [6], "out": [7], "attrs": {"axes": ["tp"], "dim": 0}, "loc": "v"},
    {"op": "reduce_sum", "in": [7], "out": [8], "attrs": {"axes": [0], "keepdims": false}, "loc": "loss"},
    {"op": "formula", "in": [10, 9], "out": [11], "attrs": {"formula": "add"}, "loc": "m"},
    {"op": "copy", "in": [11], "out": [10], "attrs": {}, "loc": "m"}
  ]
})";
}

std::string blob() {
  std::string b(128, '\0');
  int64_t one = 1;
  std::memcpy(b.data(), &one, 8);
  uint16_t half = f32ToBf16(0.3f);
  std::memcpy(b.data() + 64, &half, 2);
  return b;
}

void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// The artifact (and w.bin) in `dir`; returns its path.
std::string writeTrainArtifact(const TempDir &dir, int64_t tp, const std::string &name = "train.shardc",
                               const std::string &producer = "unit test") {
  writeFile(dir.file("w.bin"), std::string(reinterpret_cast<const char *>(kW0.data()), 16));
  std::string path = dir.file(name);
  EXPECT_EQ(writeJsonArtifact(path, trainManifest(tp, producer), blob()), "");
  return path;
}

HostTensor f32(const std::string &name, std::vector<int64_t> shape, const std::vector<float> &values) {
  HostTensor t{name, DType::F32, std::move(shape), {}};
  t.data.resize(values.size() * 4);
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

template <typename T> std::vector<T> values(const HostTensor &t) {
  std::vector<T> v(t.data.size() / sizeof(T));
  std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}

const HostTensor &named(const std::vector<HostTensor> &ts, const std::string &name) {
  for (const HostTensor &t : ts)
    if (t.name == name)
      return t;
  static HostTensor none;
  ADD_FAILURE() << "no tensor '" << name << "'";
  return none;
}

// shardc-run in process: exit status, stdout, and the last line of stderr.
struct Ran {
  int status = 0;
  std::string out, err;
};
Ran shardcRun(std::vector<std::string> args, const shardc::runcli::RunHooks &hooks = {}) {
  args.insert(args.begin(), "shardc-run");
  std::vector<char *> argv;
  for (std::string &a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  Ran r;
  r.status = shardc::runcli::runMain(static_cast<int>(args.size()), argv.data(), hooks);
  std::fflush(stdout);
  std::fflush(stderr);
  r.out = testing::internal::GetCapturedStdout();
  std::string err = testing::internal::GetCapturedStderr();
  while (!err.empty() && err.back() == '\n')
    err.pop_back();
  r.err = err.substr(err.rfind('\n') == std::string::npos ? 0 : err.rfind('\n') + 1);
  return r;
}

std::string fileBytes(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

} // namespace

TEST(TrainState, RunsReadAndWriteStateThatPersists) {
  TempDir dir;
  Artifact a;
  ASSERT_EQ(loadArtifact(writeTrainArtifact(dir, 1), a), "");
  EXPECT_EQ(a.buffers[2].storage, Storage::State);
  CpuBackend cpu;
  std::unique_ptr<Executor> ex;
  ASSERT_EQ(Executor::create(a, cpu, ex), "");
  std::vector<uint8_t> bytes;
  ASSERT_EQ(ex->readState(2, bytes), "");
  EXPECT_EQ(values<int64_t>(HostTensor{"", DType::I64, {}, bytes}), std::vector<int64_t>{0}); // zero at load
  ASSERT_EQ(ex->readState(5, bytes), "");
  EXPECT_EQ(values<float>(HostTensor{"", DType::F32, {4}, bytes}), kW0); // the load step's copy
  std::vector<float> v = kW0;
  float m = 0;
  for (int64_t run = 1; run <= 3; ++run) {
    std::vector<float> x = {float(run), 0.25f, -1.0f, 0.5f * float(run)};
    std::vector<HostTensor> out;
    ASSERT_EQ(ex->run({f32("x", {4}, x)}, out), "");
    for (size_t i = 0; i < 4; ++i)
      v[i] += x[i];
    m = bf16ToF32(f32ToBf16(m + bf16ToF32(f32ToBf16(0.3f))));
    EXPECT_EQ(values<int64_t>(named(out, "count")), std::vector<int64_t>{run});
    EXPECT_EQ(values<float>(named(out, "v")), v);
    EXPECT_EQ(values<float>(named(out, "loss")), std::vector<float>{v[0] + v[1] + v[2] + v[3]});
    EXPECT_EQ(bf16ToF32(values<uint16_t>(named(out, "m"))[0]), m);
  }
  // writeState replaces the value the next run reads.
  int64_t ten = 10;
  ASSERT_EQ(ex->writeState(2, &ten, 8), "");
  std::vector<HostTensor> out;
  ASSERT_EQ(ex->run({f32("x", {4}, {0, 0, 0, 0})}, out), "");
  EXPECT_EQ(values<int64_t>(named(out, "count")), std::vector<int64_t>{11});
  EXPECT_EQ(ex->writeState(2, &ten, 4), "state 'count': 4 bytes given, the buffer has 8");
  EXPECT_EQ(ex->readState(3, bytes), "buffer 3 is not a state buffer");
}

// On a backend whose memory the host cannot address, state is read and written only through
// copyOut/copyIn (the all_gather is staged through the host here, so runs are not captured).
TEST(TrainState, DeviceStateMovesThroughCopies) {
  TempDir dir;
  Artifact a;
  ASSERT_EQ(loadArtifact(writeTrainArtifact(dir, 1), a), "");
  test_backends::DeviceSimBackend device;
  std::unique_ptr<Executor> ex;
  ASSERT_EQ(Executor::create(a, device, ex), "");
  std::vector<HostTensor> out;
  for (int64_t run = 1; run <= 3; ++run) {
    ASSERT_EQ(ex->run({f32("x", {4}, {1, 1, 1, 1})}, out), "");
    EXPECT_EQ(values<int64_t>(named(out, "count")), std::vector<int64_t>{run});
  }
  uint64_t in = device.copiedIn.load(), outBytes = device.copiedOut.load();
  std::vector<uint8_t> bytes;
  ASSERT_EQ(ex->readState(5, bytes), "");
  EXPECT_EQ(values<float>(HostTensor{"", DType::F32, {4}, bytes}), (std::vector<float>{3.5f, 1.75f, 5, 6.75f}));
  EXPECT_EQ(device.copiedOut.load(), outBytes + 16);
  std::vector<float> v = {1, 2, 3, 4};
  ASSERT_EQ(ex->writeState(5, v.data(), 16), "");
  EXPECT_EQ(device.copiedIn.load(), in + 16);
  ASSERT_EQ(ex->run({f32("x", {4}, {1, 1, 1, 1})}, out), "");
  EXPECT_EQ(values<float>(named(out, "v")), (std::vector<float>{2, 3, 4, 5}));
  EXPECT_EQ(values<int64_t>(named(out, "count")), std::vector<int64_t>{4});
}

TEST(TrainState, LoaderRules) {
  auto load = [](const std::string &manifest) {
    Artifact a;
    std::string err = parseArtifact(encodeJsonArtifact(manifest, blob()), "m.shardc", a);
    return err;
  };
  // A load step writing State (v), and run steps writing State: accepted.
  EXPECT_EQ(load(trainManifest(1)), "");
  // A run step writing a Persistent buffer is still refused.
  auto edited = [](std::string m, const std::string &from, const std::string &to) {
    size_t at = m.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? m : m.replace(at, from.size(), to);
  };
  std::string m = edited(trainManifest(1), R"("name": "count", "dtype": "i64", "shape": [], "storage": "state")",
                         R"("name": "count", "dtype": "i64", "shape": [], "storage": "persistent")");
  EXPECT_EQ(load(m), "m.shardc: manifest: steps[1].out[0]: step 'copy' writes buffer 2, which is not an arena or "
                     "state buffer");
  // State lies in the persistent block.
  EXPECT_EQ(load(trainManifest(1, "unit test", 129)),
            "m.shardc: manifest: buffers[10]: persistent range [128, 130) overflows persistent_bytes 129");
  EXPECT_EQ(load(trainManifest(1, "unit test", 64)),
            "m.shardc: manifest: buffers[5]: persistent range [64, 80) overflows persistent_bytes 64");
  // A load step still may not read an arena buffer, and writes only persistent or state ones.
  m = edited(trainManifest(1), R"("in": [4], "out": [5])", R"("in": [4], "out": [3])");
  EXPECT_EQ(load(m), "m.shardc: manifest: load_steps[0].out[0]: step 'copy' writes buffer 3, which is not a "
                     "persistent or state buffer");
}

TEST(TrainState, StepsSliceStackedInputsAndStackOutputs) {
  TempDir dir;
  std::string model = writeTrainArtifact(dir, 1);
  ASSERT_EQ(writeNpz(dir.file("in.npz"), {f32("x", {3, 4}, {1, 2, 3, 4, 10, 20, 30, 40, 100, 200, 300, 400})}), "");
  Ran r = shardcRun({model, "--steps", "3", "--inputs", dir.file("in.npz"), "--outputs", dir.file("out.npz")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "step 1 loss 15\nstep 2 loss 115\nstep 3 loss 1115\n");
  std::vector<HostTensor> out;
  ASSERT_EQ(readNpz(dir.file("out.npz"), out), "");
  EXPECT_EQ(named(out, "count").shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(values<int64_t>(named(out, "count")), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(named(out, "v").shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(values<float>(named(out, "v")),
            (std::vector<float>{1.5f, 0.75f, 5, 7.75f, 11.5f, 20.75f, 35, 47.75f, 111.5f, 220.75f, 335, 447.75f}));
  EXPECT_EQ(named(out, "loss").shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(named(out, "m").dtype, DType::F32); // bf16 outputs are written as f32

  // An input of its own shape feeds every run; one run has no extra dim.
  ASSERT_EQ(writeNpz(dir.file("one.npz"), {f32("x", {4}, {1, 1, 1, 1})}), "");
  r = shardcRun({model, "--steps", "2", "--inputs", dir.file("one.npz"), "--outputs", dir.file("out.npz")});
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_EQ(readNpz(dir.file("out.npz"), out), "");
  EXPECT_EQ(values<float>(named(out, "v")), (std::vector<float>{1.5f, -0.25f, 3, 4.75f, 2.5f, 0.75f, 4, 5.75f}));
  r = shardcRun({model, "--inputs", dir.file("one.npz"), "--outputs", dir.file("out.npz")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "step 1 loss 9\n");
  ASSERT_EQ(readNpz(dir.file("out.npz"), out), "");
  EXPECT_EQ(named(out, "count").shape, (std::vector<int64_t>{}));

  // A leading dim that is not --steps is refused, naming the input, both shapes and N.
  ASSERT_EQ(writeNpz(dir.file("bad.npz"), {f32("x", {2, 4}, {1, 2, 3, 4, 5, 6, 7, 8})}), "");
  r = shardcRun({model, "--steps", "3", "--inputs", dir.file("bad.npz")});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "shardc-run: error: " + dir.file("bad.npz") +
                       ": input 'x': --steps 3 takes 4 (every run) or 3x4 (run k its slice k), given 2x4");
  r = shardcRun({model, "--steps", "3", "--repeat", "2"});
  EXPECT_EQ(r.err, "shardc-run: error: --steps 3 runs a training loop; --repeat and --profile time repeated "
                   "runs of one step: give them without --steps");
  r = shardcRun({model, "--steps", "0"});
  EXPECT_EQ(r.err, "shardc-run: error: --steps needs a step count >= 1, not '0'");
}

// Saving after 2 steps, loading and running 1 more gives exactly what 3 steps straight give.
void resumeIsExact(int64_t tp) {
  TempDir dir;
  std::string model = writeTrainArtifact(dir, tp);
  std::vector<std::string> ranks = tp > 1 ? std::vector<std::string>{"--threads", std::to_string(tp)}
                                          : std::vector<std::string>{};
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), model);
    args.insert(args.end(), ranks.begin(), ranks.end());
    return shardcRun(args);
  };
  ASSERT_EQ(writeNpz(dir.file("in3.npz"), {f32("x", {3, 4}, {1, 2, 3, 4, 0.1f, 0.2f, 0.3f, 0.4f, 7, -8, 9, 1e-3f})}), "");
  ASSERT_EQ(writeNpz(dir.file("in2.npz"), {f32("x", {2, 4}, {1, 2, 3, 4, 0.1f, 0.2f, 0.3f, 0.4f})}), "");
  ASSERT_EQ(writeNpz(dir.file("in1.npz"), {f32("x", {4}, {7, -8, 9, 1e-3f})}), "");
  Ran r = run({"--steps", "3", "--inputs", dir.file("in3.npz"), "--save-state", dir.file("straight"), "--outputs",
               dir.file("o3.npz")});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string straightLog = r.out;
  r = run({"--steps", "2", "--inputs", dir.file("in2.npz"), "--save-state", dir.file("ckpt"), "--outputs",
           dir.file("o2.npz")});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string log = r.out;
  r = run({"--inputs", dir.file("in1.npz"), "--load-state", dir.file("ckpt"), "--save-state", dir.file("resumed"),
           "--outputs", dir.file("o1.npz")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(log + r.out, straightLog); // "step 3 loss ..." continues the numbering
  for (int64_t k = 0; k < tp; ++k)
    for (const char *ext : {".npz", ".json"}) {
      std::string file = "/step-00000003/rank" + std::to_string(k) + ext;
      EXPECT_EQ(fileBytes(dir.file("resumed") + file), fileBytes(dir.file("straight") + file)) << file;
    }
  EXPECT_EQ(fileBytes(dir.file("resumed/manifest.json")), fileBytes(dir.file("straight/manifest.json")));
  EXPECT_NE(fileBytes(dir.file("ckpt/manifest.json")).find("\"step_dir\": \"step-00000002\""), std::string::npos);
  std::vector<HostTensor> o3, o1;
  ASSERT_EQ(readNpz(dir.file("o3.npz"), o3), "");
  ASSERT_EQ(readNpz(dir.file("o1.npz"), o1), "");
  for (const char *name : {"count", "v", "loss", "m"}) {
    const HostTensor &all = named(o3, name), &last = named(o1, name);
    ASSERT_EQ(all.data.size(), 3 * last.data.size()) << name;
    EXPECT_EQ(0, std::memcmp(all.data.data() + 2 * last.data.size(), last.data.data(), last.data.size())) << name;
  }
  EXPECT_EQ(values<int64_t>(named(o1, "count")), std::vector<int64_t>{3});
}

TEST(TrainState, SaveLoadContinuesExactlyOneRank) { resumeIsExact(1); }
TEST(TrainState, SaveLoadContinuesExactlyTwoThreads) { resumeIsExact(2); }

// The same artifact loads rank by rank; another mesh or artifact is resharded from the saved
// chunks of each logical tensor (v: the weight w0's split), as torch.distributed.checkpoint.
TEST(TrainState, LoadReshardsOntoAnotherMesh) {
  TempDir dir;
  std::string model = writeTrainArtifact(dir, 1), model2 = writeTrainArtifact(dir, 2, "train2.shardc");
  std::string other = writeTrainArtifact(dir, 1, "other.shardc", "another producer");
  ASSERT_EQ(writeNpz(dir.file("in.npz"), {f32("x", {4}, {1, 2, 3, 4})}), "");
  std::string in = dir.file("in.npz"), ckpt = dir.file("ckpt"), ckpt2 = dir.file("ckpt2");
  ASSERT_EQ(shardcRun({model, "--inputs", in, "--save-state", ckpt}).status, 0);
  ASSERT_EQ(shardcRun({model2, "--threads", "2", "--inputs", in, "--save-state", ckpt2}).status, 0);
  // Saved on tp=2, loaded on one rank (and the reverse), or into another artifact: v = w0 + 2x.
  for (auto [art, from, threads] : {std::tuple{model, ckpt2, "1"}, std::tuple{model2, ckpt, "2"},
                                    std::tuple{other, ckpt, "1"}}) {
    Ran r = shardcRun({art, "--threads", threads, "--inputs", in, "--load-state", from, "--outputs", dir.file("o.npz")});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "step 2 loss 25\n") << art << " from " << from;
    std::vector<HostTensor> out;
    ASSERT_EQ(readNpz(dir.file("o.npz"), out), "");
    EXPECT_EQ(values<float>(named(out, "v")), (std::vector<float>{2.5f, 2.75f, 8, 11.75f}));
    EXPECT_EQ(values<int64_t>(named(out, "count")), std::vector<int64_t>{2});
  }
  // The rank files say where each chunk sits.
  std::string meta = fileBytes(ckpt2 + "/step-00000001/rank1.json");
  EXPECT_NE(meta.find(R"({"name": "v", "kind": "param", "dtype": "f32", "shape": [2], "global": "w0", )"
                      R"("global_shape": [4], "offsets": [2], "sizes": [2], "transform": "none", "tied": []})"),
            std::string::npos) << meta;
  EXPECT_NE(meta.find(R"({"name": "m", "kind": "other", "dtype": "f32", "shape": [], "global": "m", )"
                      R"("global_shape": [], "offsets": [], "sizes": []})"),
            std::string::npos) << meta;
}

TEST(TrainState, LoadStateRefusals) {
  TempDir dir;
  std::string model = writeTrainArtifact(dir, 1);
  // v without its init copy: a state whose place in a logical tensor is unknown.
  std::string m = trainManifest(1);
  const std::string init = R"("load_steps": [{"op": "copy", "in": [4], "out": [5], "attrs": {}, "loc": "init @ v"}])";
  ASSERT_NE(m.find(init), std::string::npos);
  std::string noInit = dir.file("noinit.shardc");
  ASSERT_EQ(writeJsonArtifact(noInit, m.replace(m.find(init), init.size(), R"("load_steps": [])"), blob()), "");
  ASSERT_EQ(writeNpz(dir.file("in.npz"), {f32("x", {4}, {1, 2, 3, 4})}), "");
  std::string in = dir.file("in.npz"), ckpt = dir.file("ckpt");
  ASSERT_EQ(shardcRun({model, "--inputs", in, "--save-state", ckpt}).status, 0);

  Ran r = shardcRun({noInit, "--inputs", in, "--load-state", ckpt});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "shardc-run: error: " + ckpt + "/manifest.json: saved by 'train.shardc' on 1 ranks (mesh tp=1), "
                   "loaded into " + noInit + " on 1 (mesh tp=1): state 'v' has no known place in a logical tensor, "
                   "so it loads only into the artifact that saved it");
  r = shardcRun({model, "--inputs", in, "--load-state", dir.file("nowhere")});
  EXPECT_EQ(r.err, "shardc-run: error: " + dir.file("nowhere") +
                       "/manifest.json: cannot open (--load-state takes a directory --save-state wrote)");

  // Edit the saved arrays: drop one, change a shape, a dtype, add a stranger.
  const std::string npzPath = ckpt + "/step-00000001/rank0.npz";
  std::vector<HostTensor> saved;
  ASSERT_EQ(readNpz(npzPath, saved), "");
  ASSERT_EQ(saved.size(), 3u);
  auto withEdit = [&](const std::function<void(std::vector<HostTensor> &)> &edit) {
    std::vector<HostTensor> t = saved;
    edit(t);
    EXPECT_EQ(writeNpz(npzPath, t), "");
    return shardcRun({model, "--inputs", in, "--load-state", ckpt}).err;
  };
  std::string npz = "shardc-run: error: " + npzPath + ": ";
  EXPECT_EQ(withEdit([](std::vector<HostTensor> &t) { t.pop_back(); }),
            npz + "state 'm' is missing (2 arrays in the file, 3 state buffers in " + model + ")");
  EXPECT_EQ(withEdit([](std::vector<HostTensor> &t) { t[1] = f32("v", {5}, {1, 2, 3, 4, 5}); }),
            npz + "state 'v': the artifact's is f32 4, the file's f32 5");
  EXPECT_EQ(withEdit([](std::vector<HostTensor> &t) { t[0] = f32("count", {}, {1}); }),
            npz + "state 'count': the artifact's is i64 scalar, the file's f32 scalar");
  EXPECT_EQ(withEdit([](std::vector<HostTensor> &t) { t[2] = HostTensor{"m", DType::I32, {}, {0, 0, 0, 0}}; }),
            npz + "state 'm': the artifact's is bf16 scalar (saved as f32), the file's i32 scalar");
  EXPECT_EQ(withEdit([](std::vector<HostTensor> &t) { t.push_back(f32("z", {1}, {0})); }),
            npz + "'z' is not a state buffer of " + model);
  // Unchanged, it loads: the counter continues from 1.
  EXPECT_EQ(withEdit([](std::vector<HostTensor> &) {}), "");
  r = shardcRun({model, "--inputs", in, "--load-state", ckpt, "--outputs", dir.file("o.npz")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "step 2 loss 25\n");
}

// A rank that fails after writing its files and before the commit (the hook, as
// SHARDC_TEST_DIE_IN_SAVE) leaves the previous step committed, and resuming from it
// continues exactly; a save keeps the last two steps; a step number already committed is
// saved beside it (step-N.1), never over it.
TEST(TrainState, CommitIsAcrossRanks) {
  TempDir dir;
  std::string model = writeTrainArtifact(dir, 2);
  ASSERT_EQ(writeNpz(dir.file("in4.npz"), {f32("x", {4, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})}), "");
  auto run = [&](std::vector<std::string> args, const shardc::runcli::RunHooks &hooks = {}) {
    args.insert(args.begin(), {model, "--threads", "2", "--outputs", dir.file("o.npz")});
    return shardcRun(args, hooks);
  };
  Ran straight = run({"--steps", "4", "--inputs", dir.file("in4.npz"), "--checkpoint-dir", dir.file("all"),
                      "--checkpoint-every", "1"});
  ASSERT_EQ(straight.status, 0) << straight.err;
  std::vector<std::string> steps;
  for (const auto &e : std::filesystem::directory_iterator(dir.file("all")))
    steps.push_back(e.path().filename().string());
  std::sort(steps.begin(), steps.end());
  EXPECT_EQ(steps, (std::vector<std::string>{"manifest.json", "step-00000003", "step-00000004"}));

  shardc::runcli::RunHooks hooks;
  hooks.beforeCommit = [](int64_t rank, int64_t stepsDone, bool) -> std::string {
    return rank == 1 && stepsDone == 2 ? "rank 1 dies in the save of step 2" : "";
  };
  Ran r = run({"--steps", "4", "--inputs", dir.file("in4.npz"), "--checkpoint-dir", dir.file("ckpt"),
               "--checkpoint-every", "1"}, hooks);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "shardc-run: error: rank 1: " + model + ": rank 1 dies in the save of step 2");
  EXPECT_NE(fileBytes(dir.file("ckpt/manifest.json")).find("\"step_dir\": \"step-00000001\""), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir.file("ckpt/step-00000002/rank1.npz"))); // written, never committed
  std::vector<std::string> lines;
  std::istringstream log(straight.out);
  for (std::string line; std::getline(log, line);)
    lines.push_back(line);
  ASSERT_GE(lines.size(), 4u);
  // Resumed from step 1: steps 2..4 as the straight run's (x rows 2..4).
  ASSERT_EQ(writeNpz(dir.file("in3.npz"), {f32("x", {3, 4}, {5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})}), "");
  r = run({"--steps", "3", "--inputs", dir.file("in3.npz"), "--resume", dir.file("ckpt"), "--checkpoint-dir",
           dir.file("ckpt")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, lines[1] + "\n" + lines[2] + "\n" + lines[3] + "\n");
  EXPECT_EQ(fileBytes(dir.file("ckpt/step-00000004/rank0.npz")), fileBytes(dir.file("all/step-00000004/rank0.npz")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("ckpt/step-00000002"))); // pruned, as step 1

  // Step 4 again, saved into `all`, whose committed step is step-00000004: beside it.
  ASSERT_EQ(writeNpz(dir.file("in1.npz"), {f32("x", {4}, {13, 14, 15, 16})}), "");
  ASSERT_EQ(writeNpz(dir.file("first3.npz"), {f32("x", {3, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})}), "");
  r = run({"--steps", "3", "--inputs", dir.file("first3.npz"), "--checkpoint-dir", dir.file("three")});
  ASSERT_EQ(r.status, 0) << r.err;
  r = run({"--inputs", dir.file("in1.npz"), "--resume", dir.file("three"), "--checkpoint-dir", dir.file("all")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, lines[3] + "\n");
  EXPECT_NE(fileBytes(dir.file("all/manifest.json")).find("\"step_dir\": \"step-00000004.1\""), std::string::npos);
  EXPECT_EQ(fileBytes(dir.file("all/step-00000004.1/rank1.npz")), fileBytes(dir.file("all/step-00000004/rank1.npz")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("all/step-00000003")));
}

// --- --data: input_ids from a token file ---
namespace {

// A step over input_ids [2, 3] (i64, split over dp): ids = all_gather(input_ids) (what the
// ranks read, together), loss = sum(f32(ids)), grad_norm = acc += loss (f32 state).
std::string dataManifest(int64_t dp, const std::string &input = "input_ids") {
  std::string d = std::to_string(dp), local = "[" + std::to_string(2 / dp) + ", 3]";
  return R"({
  "format_version": 4, "producer": "unit test", "source": "data",
  "mesh_axes": [["dp", )" + d + R"(]], "world_size": )" + d + R"(,
  "weight_files": [],
  "arena_bytes": 320, "persistent_bytes": 64,
  "buffers": [
    {"id": 0, "name": "input_ids", "dtype": "i64", "shape": )" + local + R"(, "storage": "arena", "offset": 0,
     "global_shape": [2, 3], "shard": [{"dim": 0, "axes": ["dp"]}]},
    {"id": 1, "name": "ids", "dtype": "i64", "shape": [2, 3], "storage": "arena", "offset": 64},
    {"id": 2, "name": "idsf", "dtype": "f32", "shape": [2, 3], "storage": "arena", "offset": 128},
    {"id": 3, "name": "loss", "dtype": "f32", "shape": [], "storage": "arena", "offset": 192},
    {"id": 4, "name": "acc", "dtype": "f32", "shape": [], "storage": "state", "offset": 0},
    {"id": 5, "name": "acc_new", "dtype": "f32", "shape": [], "storage": "arena", "offset": 256}
  ],
  "inputs": [{"name": ")" + input + R"(", "buffer": 0}],
  "outputs": [{"name": "ids", "buffer": 1}, {"name": "loss", "buffer": 3}, {"name": "grad_norm", "buffer": 5}],
  "load_steps": [],
  "steps": [
    {"op": "all_gather", "in": [0], "out": [1], "attrs": {"axes": ["dp"], "dim": 0}, "loc": "ids"},
    {"op": "cast", "in": [1], "out": [2], "attrs": {}, "loc": "ids"},
    {"op": "reduce_sum", "in": [2], "out": [3], "attrs": {"axes": [0, 1], "keepdims": false}, "loc": "loss"},
    {"op": "formula", "in": [4, 3], "out": [5], "attrs": {"formula": "add"}, "loc": "acc"},
    {"op": "copy", "in": [5], "out": [4], "attrs": {}, "loc": "acc"}
  ]
})";
}

std::string writeDataArtifact(const TempDir &dir, int64_t dp, const std::string &input = "input_ids") {
  std::string path = dir.file("data" + std::to_string(dp) + input + ".shardc");
  EXPECT_EQ(writeJsonArtifact(path, dataManifest(dp, input), ""), "");
  return path;
}

// Token i of a file: 70000 i - 5 (the first one negative, the others over 16 bits).
int32_t token(int64_t i) { return static_cast<int32_t>(70000 * i - 5); }

std::string tokenFile(const TempDir &dir, const std::string &name, int64_t n) {
  std::string bytes;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t v = static_cast<uint32_t>(token(i));
    for (int b = 0; b < 4; ++b)
      bytes += static_cast<char>((v >> (8 * b)) & 0xff); // little-endian
  }
  writeFile(dir.file(name), bytes);
  return dir.file(name);
}

// The tokens of `indices`, and the run lines they give (loss = their sum, grad_norm the
// running sum from `acc`).
std::vector<int64_t> tokens(const std::vector<int64_t> &indices) {
  std::vector<int64_t> t;
  for (int64_t i : indices)
    t.push_back(token(i));
  return t;
}

std::string stepLines(int64_t first, const std::vector<std::vector<int64_t>> &batches, double acc = 0) {
  std::string out;
  for (size_t k = 0; k < batches.size(); ++k) {
    double loss = 0;
    for (int64_t t : tokens(batches[k]))
      loss += static_cast<double>(t);
    acc += loss;
    char buf[128];
    std::snprintf(buf, sizeof buf, "step %lld loss %.9g grad_norm %.9g\n", static_cast<long long>(first + k), loss, acc);
    out += buf;
  }
  return out;
}

// Drops the rate lines at the end: "tokens/s: R" with R > 0, then, after three or more runs,
// "timed steps: N (runs 3 to M), mean ...: R tokens/s" (docs/cli.md, --data).
std::string withoutRate(std::string out) {
  if (size_t timed = out.rfind("timed steps: "); timed != std::string::npos && (timed == 0 || out[timed - 1] == '\n')) {
    EXPECT_EQ(out.find('\n', timed), out.size() - 1) << out;
    EXPECT_NE(out.find(" tokens/s", timed), std::string::npos) << out;
    out = out.substr(0, timed);
  }
  size_t at = out.rfind("tokens/s: ");
  EXPECT_NE(at, std::string::npos) << out;
  if (at == std::string::npos)
    return out;
  EXPECT_TRUE(at == 0 || out[at - 1] == '\n') << out;
  EXPECT_GT(std::strtod(out.c_str() + at + 10, nullptr), 0.0) << out;
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(out.find('\n', at), out.size() - 1) << out;
  return out.substr(0, at);
}

} // namespace

// Run k reads tokens [6k, 6k + 6) modulo the file's length: a file of 10 tokens wraps in the
// second run, one of 4 inside every run; on one rank and on two (each takes its row).
void dataStreamWraps(int64_t dp) {
  TempDir dir;
  std::string model = writeDataArtifact(dir, dp), ten = tokenFile(dir, "ten.bin", 10);
  std::vector<std::string> ranks = dp > 1 ? std::vector<std::string>{"--threads", "2"} : std::vector<std::string>{};
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), model);
    args.insert(args.end(), ranks.begin(), ranks.end());
    return shardcRun(args);
  };
  std::vector<std::vector<int64_t>> batches = {{0, 1, 2, 3, 4, 5}, {6, 7, 8, 9, 0, 1}, {2, 3, 4, 5, 6, 7}};
  Ran r = run({"--steps", "3", "--data", ten, "--outputs", dir.file("out.npz"), "--losses-out", dir.file("l.json")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(withoutRate(r.out), stepLines(1, batches));
  std::vector<HostTensor> out;
  ASSERT_EQ(readNpz(dir.file("out.npz"), out), "");
  EXPECT_EQ(named(out, "ids").shape, (std::vector<int64_t>{3, 2, 3}));
  EXPECT_EQ(values<int64_t>(named(out, "ids")), tokens({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7}));
  double l1 = 0, l2 = 0, l3 = 0;
  for (int64_t i = 0; i < 6; ++i) {
    l1 += token(batches[0][i]);
    l2 += token(batches[1][i]);
    l3 += token(batches[2][i]);
  }
  char json[256];
  std::snprintf(json, sizeof json, "{\"loss\": [%.9g, %.9g, %.9g],\n \"grad_norm\": [%.9g, %.9g, %.9g]}\n", l1, l2, l3,
                l1, l1 + l2, l1 + l2 + l3);
  EXPECT_EQ(fileBytes(dir.file("l.json")), json);

  // Shorter than a batch: every run wraps (runs start at 0, 6 mod 4 = 2).
  std::string four = tokenFile(dir, "four.bin", 4);
  r = run({"--steps", "2", "--data", four, "--outputs", dir.file("out4.npz")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(withoutRate(r.out), stepLines(1, {{0, 1, 2, 3, 0, 1}, {2, 3, 0, 1, 2, 3}}));
  ASSERT_EQ(readNpz(dir.file("out4.npz"), out), "");
  EXPECT_EQ(values<int64_t>(named(out, "ids")), tokens({0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3}));

  // One run (the default): the first batch, outputs unstacked.
  r = run({"--data", ten, "--outputs", dir.file("out1.npz")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(withoutRate(r.out), stepLines(1, {batches[0]}));
  ASSERT_EQ(readNpz(dir.file("out1.npz"), out), "");
  EXPECT_EQ(named(out, "ids").shape, (std::vector<int64_t>{2, 3}));

  // 2 runs, --save-state, --load-state and 1 run read what 3 runs read: the data position is
  // the state's run count.
  r = run({"--steps", "2", "--data", ten, "--save-state", dir.file("ckpt"), "--outputs", dir.file("o2.npz")});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string log = withoutRate(r.out);
  r = run({"--data", ten, "--load-state", dir.file("ckpt"), "--outputs", dir.file("resumed.npz"), "--losses-out",
           dir.file("r.json")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(log + withoutRate(r.out), stepLines(1, batches));
  ASSERT_EQ(readNpz(dir.file("resumed.npz"), out), "");
  EXPECT_EQ(values<int64_t>(named(out, "ids")), tokens(batches[2]));
  std::snprintf(json, sizeof json, "{\"loss\": [%.9g],\n \"grad_norm\": [%.9g]}\n", l3, l1 + l2 + l3);
  EXPECT_EQ(fileBytes(dir.file("r.json")), json);
}

TEST(TrainState, DataStreamWrapsAndResumesOneRank) { dataStreamWraps(1); }
TEST(TrainState, DataStreamWrapsAndResumesTwoThreads) { dataStreamWraps(2); }

TEST(TrainState, DataRefusals) {
  TempDir dir;
  std::string model = writeDataArtifact(dir, 1), ten = tokenFile(dir, "ten.bin", 10);
  ASSERT_EQ(writeNpz(dir.file("in.npz"), {HostTensor{"input_ids", DType::I64, {2, 3}, std::vector<uint8_t>(48)}}), "");
  Ran r = shardcRun({model, "--data", ten, "--inputs", dir.file("in.npz")});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "shardc-run: error: give --inputs or --data, not both (--data feeds input_ids from a token file)");
  r = shardcRun({model, "--data", ten, "--repeat", "2"});
  EXPECT_EQ(r.err, "shardc-run: error: --data feeds a training loop (--steps); --repeat and --profile time "
                   "repeated runs of one step: give them without --data");
  writeFile(dir.file("odd.bin"), std::string(10, '\1'));
  r = shardcRun({model, "--data", dir.file("odd.bin")});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "shardc-run: error: " + dir.file("odd.bin") +
                       ": 10 bytes, not a multiple of 4 (--data takes raw little-endian int32 token ids)");
  writeFile(dir.file("empty.bin"), "");
  r = shardcRun({model, "--data", dir.file("empty.bin")});
  EXPECT_EQ(r.err, "shardc-run: error: " + dir.file("empty.bin") +
                       ": empty (--data takes raw little-endian int32 token ids)");
  r = shardcRun({model, "--data", dir.file("nowhere.bin")});
  EXPECT_EQ(r.err.rfind("shardc-run: error: " + dir.file("nowhere.bin") + ": cannot read the token file (--data): ", 0),
            0u)
      << r.err;
  // The artifact must have one input, an i64 [B, S] named input_ids.
  std::string other = writeDataArtifact(dir, 1, "tokens");
  r = shardcRun({other, "--data", ten});
  EXPECT_EQ(r.err, "shardc-run: error: --data " + ten + ": " + other +
                       " needs exactly one input, an i64 [B, S] (or [g, B, S]) named input_ids; its inputs: tokens i64 2x3");
  std::string train = writeTrainArtifact(dir, 1);
  r = shardcRun({train, "--data", ten});
  EXPECT_EQ(r.err, "shardc-run: error: --data " + ten + ": " + train +
                       " needs exactly one input, an i64 [B, S] (or [g, B, S]) named input_ids; its inputs: x f32 4");
  EXPECT_EQ(shardcRun({model, "--data"}).err, "shardc-run: error: --data needs a token file");
}
