"""Writer threads: concurrency, errors handed to the caller, per-thread clean-up."""

import threading

import pytest

from genworker.writers import Writers


def test_submitted_calls_run_at_the_same_time_on_writer_threads():
    both_started = threading.Barrier(2, timeout=10)

    def meet():
        both_started.wait()  # breaks (and raises) unless the other call runs meanwhile
        return threading.current_thread().name

    with Writers(2) as writers:
        futures = [writers.submit(meet) for _ in range(2)]
        names = sorted(future.result(timeout=15) for future in futures)
    assert names == ["gantry-writer-0", "gantry-writer-1"]


def test_a_failing_call_hands_its_exception_to_its_future_and_the_thread_goes_on():
    def fail():
        raise OSError("No space left on device")

    with Writers(1) as writers:
        failed = writers.submit(fail)
        after = writers.submit(lambda a, b: a + b, 2, 3)
        with pytest.raises(OSError, match="No space left"):
            failed.result(timeout=10)
        assert after.result(timeout=10) == 5


def test_every_thread_runs_on_exit_once_after_finishing_what_was_submitted():
    exited, done = [], []
    lock = threading.Lock()

    def on_exit():
        with lock:
            exited.append(threading.current_thread().name)

    writers = Writers(3, on_exit=on_exit)
    for number in range(12):
        writers.submit(done.append, number)
    writers.close()
    assert sorted(done) == list(range(12))
    assert sorted(exited) == ["gantry-writer-0", "gantry-writer-1", "gantry-writer-2"]


def test_without_threads_a_call_runs_at_submit_in_the_callers_thread():
    with Writers(0) as writers:
        future = writers.submit(lambda: threading.current_thread())
        assert future.done()
        assert future.result() is threading.current_thread()


def test_a_negative_thread_count_is_refused():
    with pytest.raises(ValueError, match="0 or more"):
        Writers(-1)
