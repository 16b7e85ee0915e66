// Detecting a rank whose stream stopped advancing. After enqueuing a step the host asks for
// a marker, and the stream the step ran on writes it to that stream's progress word when it
// gets there (for NCCL: host-mapped words written by cuStreamWriteValue32, one for the compute
// stream and one for the communication stream, so a hung compute kernel is named too). A host thread reads the word; when the
// oldest unfinished step has been waiting longer than the timeout, the rank is stuck. The
// decision is plain C++ (StallDetector) and tested on the CPU; only the word is CUDA's.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <array>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace shardc::rt {

class StallDetector {
public:
  using Clock = std::chrono::steady_clock;
  // Progress lanes: one progress word per stream that runs steps (0: compute, 1:
  // communication). Each lane's markers count on their own; a lane stalls on its own.
  static constexpr int kLanes = 2;
  using Words = std::array<uint32_t, kLanes>;

  StallDetector(int64_t rank, std::chrono::milliseconds timeout) : rank_(rank), timeout_(timeout) {}
  void setTimeout(std::chrono::milliseconds t) { timeout_ = t; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  // Step `step` (`name`) was enqueued at `now` on lane `lane`'s stream; that stream writes
  // `marker` to the lane's word when it is done. Markers increase by one per step of the lane
  // (wrapping at 2^32).
  void enqueued(int lane, uint32_t marker, int64_t step, std::string name, Clock::time_point now);
  void enqueued(uint32_t marker, int64_t step, std::string name, Clock::time_point now) {
    enqueued(0, marker, step, std::move(name), now);
  }

  // The words read `words` at `now`. Returns the report the first time the oldest unfinished
  // step of some lane has waited longer than the timeout — counted from when it became its
  // lane's oldest (its predecessor finished, or it was enqueued onto an idle stream), so an
  // idle rank is never stuck — "rank 3 stuck at step 7 (all_reduce @ down) on the
  // communication stream: not done after 10s (last done: step 6; ...)"; nullopt otherwise and
  // after that. The single-word form reads lane 0 only.
  std::optional<std::string> observe(const Words &words, Clock::time_point now);
  std::optional<std::string> observe(uint32_t value, Clock::time_point now) {
    Words words{};
    words[0] = value;
    for (int l = 1; l < kLanes; ++l)
      words[l] = lanes_[l].lastWord;
    return observe(words, now);
  }

  // A new run whose markers start again at 1 (the words were set back to 0): nothing is
  // pending and no step is done yet. A report already given stays given.
  void reset() {
    for (Lane &l : lanes_) {
      l.pending.clear();
      l.lastWord = 0;
    }
    lastDone_ = -1;
  }

  bool fired() const { return fired_; }
  size_t pending() const {
    size_t n = 0;
    for (const Lane &l : lanes_)
      n += l.pending.size();
    return n;
  }

private:
  struct Step {
    uint32_t marker;
    int64_t step;
    std::string name;
  };
  struct Lane {
    std::deque<Step> pending;   // enqueued, not yet seen done, oldest first
    Clock::time_point headSince; // when pending.front() became the oldest
    uint32_t lastWord = 0;
  };
  int64_t rank_;
  std::chrono::milliseconds timeout_;
  Lane lanes_[kLanes];
  int64_t lastDone_ = -1; // the highest step number seen done on any lane
  bool fired_ = false;
};

// The host thread around a StallDetector: polls `read` (the progress word) and calls
// `onStall` once, on its own thread, with the report. `check` (optional) is polled too and
// fires the same way when it returns an error (e.g. an asynchronous NCCL error).
class ProgressWatchdog {
public:
  ProgressWatchdog(int64_t rank, std::chrono::milliseconds timeout,
                   std::function<StallDetector::Words()> read,
                   std::function<void(const std::string &)> onStall,
                   std::function<std::string()> check = nullptr);
  // One word: lane 0 only.
  ProgressWatchdog(int64_t rank, std::chrono::milliseconds timeout, std::function<uint32_t()> read,
                   std::function<void(const std::string &)> onStall,
                   std::function<std::string()> check = nullptr)
      : ProgressWatchdog(
            rank, timeout, [r = std::move(read)] { return StallDetector::Words{r()}; }, std::move(onStall),
            std::move(check)) {}
  ~ProgressWatchdog(); // stops and joins the thread
  ProgressWatchdog(const ProgressWatchdog &) = delete;
  ProgressWatchdog &operator=(const ProgressWatchdog &) = delete;

  // Registers step `step` (`name`), just enqueued on lane `lane`'s stream; returns the marker
  // that stream must write to the lane's word when the step is done.
  uint32_t enqueue(int64_t step, std::string name, int lane = 0);
  // Starts a run whose markers count from 1 again (the caller set the word back to 0 while
  // the stream was idle): a CUDA graph replays the same marker writes every run.
  void beginRun();
  void setTimeout(std::chrono::milliseconds t);
  // The report once it fired, else "".
  std::string report() const;

private:
  void loop();
  std::chrono::milliseconds pollInterval() const;

  std::function<StallDetector::Words()> read_;
  std::function<void(const std::string &)> onStall_;
  std::function<std::string()> check_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  StallDetector detector_;
  int64_t rank_;
  StallDetector::Words nextMarker_{};
  bool stop_ = false;
  std::string report_;
  std::thread thread_;
};

} // namespace shardc::rt
