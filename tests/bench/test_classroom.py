"""`pose-lab classroom` (lab/bench/classroom.py): bad options get a clear message. Its
parts are tested in test_learners.py, test_capacity.py and test_server.py."""
import pytest


def test_bad_classroom_options_get_a_clear_message(capsys):
    from lab.cli import main
    for argv, words in ((["classroom", "--per-minute", "0", "0"], "not both 0"),
                        (["classroom", "--per-minute", "-1", "2"], "neither negative"),
                        (["classroom", "--server-pid", "123"], "goes with --url"),
                        (["classroom", "--url", "http://127.0.0.1:9", "--server-pid", "999999999"], "no such process")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, err
