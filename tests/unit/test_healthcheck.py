"""common.healthcheck: the heartbeat file a consumer writes and the probes read."""

import logging
import threading

from common.healthcheck import CONNECTED, RECONNECTING, Heartbeat, heartbeat_state, main


def test_the_probes_read_alive_and_connected_from_the_file(tmp_path, monkeypatch):
    path = tmp_path / "heartbeat"
    monkeypatch.setenv("HEARTBEAT_FILE", str(path))
    assert main(["--heartbeat"]) == 1 and main(["--connected"]) == 1  # never written
    Heartbeat(str(path)).beat(connected=False)
    assert heartbeat_state(str(path)) == RECONNECTING
    assert main(["--heartbeat"]) == 0 and main(["--connected"]) == 1
    Heartbeat(str(path)).beat(connected=True)
    assert heartbeat_state(str(path)) == CONNECTED
    assert main(["--heartbeat"]) == 0 and main(["--connected"]) == 0
    assert main(["--heartbeat", "--max-age", "-1"]) == 1, "a stale file is not alive"


def test_consumers_sharing_one_file_never_trip_over_each_other(tmp_path):
    """scripts/run-local runs the converter and notification in one process, with one HEARTBEAT_FILE."""
    path = str(tmp_path / "heartbeat")
    errors = []

    def beat(connected):
        heartbeat = Heartbeat(path)
        try:
            for index in range(2000):
                heartbeat.beat(connected=(index % 7 == 0) ^ connected)
        except Exception as error:  # the consumer's loop would die of it
            errors.append(error)

    threads = [threading.Thread(target=beat, args=(flag,)) for flag in (True, False, True, False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert heartbeat_state(path) in (CONNECTED, RECONNECTING)
    assert [p.name for p in tmp_path.iterdir()] == ["heartbeat"], "no partial file left behind"


def test_a_file_that_cannot_be_written_is_logged_once_and_never_raised(tmp_path, caplog):
    heartbeat = Heartbeat(str(tmp_path / "missing-folder" / "heartbeat"))
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            heartbeat.beat(connected=True)
    assert [r.message for r in caplog.records] == ["cannot write the heartbeat file"]
