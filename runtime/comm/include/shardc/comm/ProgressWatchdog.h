// Detecting a rank whose stream stopped advancing. After enqueuing a step the host asks for
// a marker, and the stream writes it to a progress word when it gets there (for NCCL: a
// host-mapped word written by cuStreamWriteValue32). A host thread reads the word; when the
// oldest unfinished step has been waiting longer than the timeout, the rank is stuck. The
// decision is plain C++ (StallDetector) and tested on the CPU; only the word is CUDA's.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
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

  StallDetector(int64_t rank, std::chrono::milliseconds timeout) : rank_(rank), timeout_(timeout) {}
  void setTimeout(std::chrono::milliseconds t) { timeout_ = t; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  // Step `step` (`name`) was enqueued at `now`; the stream writes `marker` when it is done.
  // Markers increase by one per step (wrapping at 2^32).
  void enqueued(uint32_t marker, int64_t step, std::string name, Clock::time_point now);

  // The word read `value` at `now`. Returns the report the first time the oldest unfinished
  // step has waited longer than the timeout — counted from when it became the oldest (its
  // predecessor finished, or it was enqueued onto an idle stream), so an idle rank is never
  // stuck — "rank 3 stuck at step 7 (all_reduce @ down) for 10s (step 6 was the last done)";
  // nullopt otherwise and after that.
  std::optional<std::string> observe(uint32_t value, Clock::time_point now);

  // A new run whose markers start again at 1 (the word was set back to 0): nothing is
  // pending and no step is done yet. A report already given stays given.
  void reset() {
    pending_.clear();
    lastDone_ = -1;
  }

  bool fired() const { return fired_; }
  size_t pending() const { return pending_.size(); }

private:
  struct Step {
    uint32_t marker;
    int64_t step;
    std::string name;
  };
  int64_t rank_;
  std::chrono::milliseconds timeout_;
  std::deque<Step> pending_;   // enqueued, not yet seen done, oldest first
  Clock::time_point headSince_; // when pending_.front() became the oldest
  int64_t lastDone_ = -1;       // step number of the last step seen done
  bool fired_ = false;
};

// The host thread around a StallDetector: polls `read` (the progress word) and calls
// `onStall` once, on its own thread, with the report. `check` (optional) is polled too and
// fires the same way when it returns an error (e.g. an asynchronous NCCL error).
class ProgressWatchdog {
public:
  ProgressWatchdog(int64_t rank, std::chrono::milliseconds timeout,
                   std::function<uint32_t()> read,
                   std::function<void(const std::string &)> onStall,
                   std::function<std::string()> check = nullptr);
  ~ProgressWatchdog(); // stops and joins the thread
  ProgressWatchdog(const ProgressWatchdog &) = delete;
  ProgressWatchdog &operator=(const ProgressWatchdog &) = delete;

  // Registers step `step` (`name`), just enqueued; returns the marker the stream must write
  // to the word when the step is done.
  uint32_t enqueue(int64_t step, std::string name);
  // Starts a run whose markers count from 1 again (the caller set the word back to 0 while
  // the stream was idle): a CUDA graph replays the same marker writes every run.
  void beginRun();
  void setTimeout(std::chrono::milliseconds t);
  // The report once it fired, else "".
  std::string report() const;

private:
  void loop();
  std::chrono::milliseconds pollInterval() const;

  std::function<uint32_t()> read_;
  std::function<void(const std::string &)> onStall_;
  std::function<std::string()> check_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  StallDetector detector_;
  int64_t rank_;
  uint32_t nextMarker_ = 0;
  bool stop_ = false;
  std::string report_;
  std::thread thread_;
};

} // namespace shardc::rt
