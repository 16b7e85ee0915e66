// The in-process communicator: a rendezvous per group under one mutex. Waits are bounded by
// the timeout and name exactly the members that did not arrive; a failed rank wakes everyone.
#include "shardc/comm/LocalCommunicator.h"

#include <algorithm>
#include <cstring>

namespace shardc::rt {

void LocalWorld::abort(int64_t rank, const std::string &reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (failedRank_ < 0) {
    failedRank_ = rank;
    failure_ = reason;
  }
  changed_.notify_all();
}

std::string LocalWorld::failure() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failedRank_ < 0 ? "" : "rank " + std::to_string(failedRank_) + " failed: " + failure_;
}

template <typename Compute>
std::string LocalCommunicator::meet(const CommGroup &g, const std::string &kind, const void *in,
                                    void *out, size_t outBytes, Compute compute) {
  LocalWorld &w = *world_;
  const uint64_t generation = nextGeneration_[g.ranks]++;
  const auto deadline = std::chrono::steady_clock::now() + timeout();
  const size_t size = static_cast<size_t>(g.size()), me = static_cast<size_t>(g.index);

  std::unique_lock<std::mutex> lock(w.mutex_);
  LocalWorld::Rendezvous &rv = w.rendezvous_[g.ranks];
  if (rv.present.empty()) {
    rv.present.assign(size, false);
    rv.done.assign(size, false);
    rv.inputs.assign(size, nullptr);
  }
  auto failure = [&] {
    return "rank " + std::to_string(w.failedRank_) + " failed: " + w.failure_;
  };
  // False on timeout or failure; the caller tells which.
  auto waitUntil = [&](auto ready) {
    return w.changed_.wait_until(lock, deadline, [&] { return w.failedRank_ >= 0 || ready(); }) &&
           w.failedRank_ < 0;
  };
  auto absent = [&](const std::vector<bool> &flags) {
    std::vector<int64_t> ranks;
    for (size_t j = 0; j < size; ++j)
      if (!flags[j])
        ranks.push_back(g.ranks[j]);
    return (ranks.size() == 1 ? "rank " : "ranks ") + rankList(ranks);
  };
  auto timedOut = [&](const std::string &what) {
    if (w.failedRank_ >= 0)
      return failure();
    return "timed out after " + formatDuration(timeout()) + " on group " + g.describe() + ": " +
           what;
  };

  // A member may still be leaving the previous collective on this group.
  if (!waitUntil([&] { return rv.generation == generation; }))
    return timedOut("the previous collective on this group did not end");
  if (rv.arrived == 0) {
    rv.kind = kind;
  } else if (rv.kind != kind) {
    std::string err = "collective mismatch on group " + g.describe() + ": this rank called " +
                      kind + ", another member " + rv.kind;
    w.failedRank_ = rank();
    w.failure_ = err;
    w.changed_.notify_all();
    return err;
  }
  rv.inputs[me] = in;
  rv.present[me] = true;
  ++rv.arrived;
  w.changed_.notify_all();
  if (!waitUntil([&] { return rv.arrived == static_cast<int64_t>(size); }))
    return timedOut(absent(rv.present) + " did not arrive");

  std::vector<const void *> inputs = rv.inputs;
  lock.unlock();
  result_.resize(outBytes);
  compute(inputs.data(), result_.data());
  lock.lock();

  rv.done[me] = true;
  ++rv.finished;
  w.changed_.notify_all();
  // Inputs stay readable until every member has finished with them.
  if (!waitUntil([&] { return rv.finished == static_cast<int64_t>(size); }))
    return timedOut(absent(rv.done) + " did not finish reading");
  if (++rv.left == static_cast<int64_t>(size)) {
    rv.arrived = rv.finished = rv.left = 0;
    rv.present.assign(size, false);
    rv.done.assign(size, false);
    rv.inputs.assign(size, nullptr);
    rv.kind.clear();
    ++rv.generation;
    w.changed_.notify_all();
  }
  lock.unlock();
  if (outBytes)
    std::memcpy(out, result_.data(), outBytes);
  return "";
}

namespace {

std::string kindOf(const char *op, DType dtype, int64_t count, const char *reduce = nullptr) {
  return std::string(op) + (reduce ? std::string("(") + reduce + ")" : "") + " of " +
         std::to_string(count) + " " + dtypeName(dtype);
}

std::string notReducible(const char *op, DType dtype) {
  return std::string(op) + " of " + dtypeName(dtype) +
         " is not supported (f32, f64, bf16, f16, i64, i32)";
}

} // namespace

std::string LocalCommunicator::allReduce(const CommGroup &g, const void *in, void *out,
                                         int64_t count, DType dtype, ReduceOp op) {
  if (!isReducible(dtype))
    return notReducible("all_reduce", dtype);
  size_t bytes = static_cast<size_t>(count) * dtypeSize(dtype);
  return meet(g, kindOf("all_reduce", dtype, count, reduceOpName(op)), in, out, bytes,
              [&](const void *const *inputs, uint8_t *result) {
                reduceInOrder(dtype, op, inputs, static_cast<size_t>(g.size()), count, result);
              });
}

std::string LocalCommunicator::allGather(const CommGroup &g, const void *in, void *out,
                                         int64_t count, DType dtype) {
  size_t bytes = static_cast<size_t>(count) * dtypeSize(dtype);
  return meet(g, kindOf("all_gather", dtype, count), in, out, bytes * static_cast<size_t>(g.size()),
              [&](const void *const *inputs, uint8_t *result) {
                for (int64_t j = 0; j < g.size(); ++j)
                  if (bytes)
                    std::memcpy(result + static_cast<size_t>(j) * bytes, inputs[j], bytes);
              });
}

std::string LocalCommunicator::reduceScatter(const CommGroup &g, const void *in, void *out,
                                             int64_t count, DType dtype, ReduceOp op) {
  if (!isReducible(dtype))
    return notReducible("reduce_scatter", dtype);
  size_t bytes = static_cast<size_t>(count) * dtypeSize(dtype);
  return meet(g, kindOf("reduce_scatter", dtype, count, reduceOpName(op)), in, out, bytes,
              [&](const void *const *inputs, uint8_t *result) {
                std::vector<const void *> chunks;
                for (int64_t j = 0; j < g.size(); ++j)
                  chunks.push_back(static_cast<const uint8_t *>(inputs[j]) +
                                   static_cast<size_t>(g.index) * bytes);
                reduceInOrder(dtype, op, chunks.data(), chunks.size(), count, result);
              });
}

std::string LocalCommunicator::allToAll(const CommGroup &g, const void *in, void *out,
                                        int64_t count, DType dtype) {
  size_t bytes = static_cast<size_t>(count) * dtypeSize(dtype);
  return meet(g, kindOf("all_to_all", dtype, count), in, out, bytes * static_cast<size_t>(g.size()),
              [&](const void *const *inputs, uint8_t *result) {
                for (int64_t j = 0; j < g.size(); ++j)
                  if (bytes)
                    std::memcpy(result + static_cast<size_t>(j) * bytes,
                                static_cast<const uint8_t *>(inputs[j]) +
                                    static_cast<size_t>(g.index) * bytes,
                                bytes);
              });
}

std::string LocalCommunicator::allToAllV(const CommGroup &g, const void *in, const int64_t *sendCounts,
                                         void *out, const int64_t *recvCounts, DType dtype) {
  // Each member publishes its data and its send counts: member j's chunk for this rank starts
  // after the chunks it sends to the members before it.
  struct Published {
    const uint8_t *data;
    const int64_t *sendCounts;
  } mine{static_cast<const uint8_t *>(in), sendCounts};
  const size_t elem = dtypeSize(dtype), me = static_cast<size_t>(g.index);
  size_t outBytes = 0;
  for (int64_t j = 0; j < g.size(); ++j)
    outBytes += static_cast<size_t>(recvCounts[j]) * elem;
  std::string mismatch;
  std::string err = meet(g, std::string("all_to_all_v of ") + dtypeName(dtype), &mine, out, outBytes,
                         [&](const void *const *inputs, uint8_t *result) {
                           size_t at = 0;
                           for (int64_t j = 0; j < g.size(); ++j) {
                             const auto *p = static_cast<const Published *>(inputs[j]);
                             size_t offset = 0;
                             for (size_t k = 0; k < me; ++k)
                               offset += static_cast<size_t>(p->sendCounts[k]) * elem;
                             if (p->sendCounts[me] != recvCounts[j] && mismatch.empty())
                               mismatch = "all_to_all_v on group " + g.describe() + ": rank " +
                                          std::to_string(g.ranks[size_t(j)]) + " sends " +
                                          std::to_string(p->sendCounts[me]) + " elements to rank " +
                                          std::to_string(rank()) + ", which expects " +
                                          std::to_string(recvCounts[j]);
                             size_t n = static_cast<size_t>(std::min(p->sendCounts[me], recvCounts[j])) * elem;
                             if (n)
                               std::memcpy(result + at, p->data + offset, n);
                             at += static_cast<size_t>(recvCounts[j]) * elem;
                           }
                         });
  return err.empty() ? mismatch : err;
}

std::string LocalCommunicator::barrier(const CommGroup &g) {
  return meet(g, "barrier", nullptr, nullptr, 0, [](const void *const *, uint8_t *) {});
}

} // namespace shardc::rt
