import json
import subprocess
import sys

import pytest

from mlpbench.cli import main


def test_params_json(capsys):
    assert main(["params", "-d", "100", "-w", "1000", "-L", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["num_params"] == 9_111_001
    assert out["memory"]["hessian_dense"]["bytes"] == 4 * 9_111_001**2
    assert out["memory"]["hessian_dense"]["fits_ram"] is False
    assert out["memory"]["params"]["fits_ram"] is True


def test_params_text(capsys):
    assert main(["params"]) == 0
    out = capsys.readouterr().out
    assert "9,111,001" in out and "302.0 TiB" in out and "EXCEEDS RAM" in out


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    assert "cpu_model" in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("argv, needle", [
    (["params", "-d", "0"], "input-dim"),
    (["params", "-w", "-5"], "width"),
    (["params", "-L", "1.5"], "1.5"),
    (["params", "-d", "abc"], "abc"),
    (["params", "--activation", "swish"], "swish"),
    (["params", "--dtype", "int8"], "int8"),
    (["params", "-d", "1000000000000", "-w", "1000000000000"], "too large"),
    (["params", "--batch", "0"], "batch"),
    (["nosuchcommand"], "nosuchcommand"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_console_script_exit_code():
    proc = subprocess.run([sys.executable, "-m", "mlpbench.cli", "params", "-d", "-1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("mlpbench: error:")


@pytest.mark.parametrize("text", ["32,,64", "32, ", ",32", "", " , ", "32,32", "8,8.0",
                                  "\uff13\uff12", "1_0", "0x10", "+", "3e2"])
def test_integer_lists_are_strict(text):
    from mlpbench.errors import UsageError
    from mlpbench.validate import parse_list, positive_int

    with pytest.raises(UsageError):
        parse_list("--widths", text, positive_int)


def test_integer_lists_accept_what_they_should():
    from mlpbench.validate import parse_list, positive_float, positive_int

    assert parse_list("--widths", "32,64", positive_int) == (32, 64)
    assert parse_list("--widths", " 32 , 64 ", positive_int) == (32, 64)
    assert parse_list("--lrs", "0.1,1e-2,.5", positive_float) == (0.1, 0.01, 0.5)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e400", "-1", "0", "\uff11", "1_0",
                                  "0x1p3", "abc", ""])
def test_positive_float_refuses(text):
    from mlpbench.errors import UsageError
    from mlpbench.validate import positive_float

    with pytest.raises(UsageError):
        positive_float("--lr", text)


def test_thread_bound_follows_the_logical_cores(monkeypatch):
    import os

    from mlpbench import validate
    from mlpbench.errors import UsageError

    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert validate.max_threads() == 3 * validate.THREADS_PER_CORE
    assert validate.threads("--threads", str(validate.max_threads())) == 12
    with pytest.raises(UsageError, match="at most 12"):
        validate.threads("--threads", "13")
