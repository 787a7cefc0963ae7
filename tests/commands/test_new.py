"""`runner new` driven like a person would: answers on stdin, in-process, as a subprocess and on
a pseudo-terminal, against the simulator (live inventory) and a dead proxy (fallback)."""

from __future__ import annotations

import io
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import run_cli

from runner.errors import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_INVENTORY, EXIT_OK
from runner.plan.planfile import load_plan

REPO = Path(__file__).resolve().parents[2]
SERVERS = """\
default: sim
servers:
  sim:
    kind: mock
    models: [Qwen/Qwen3-8B, Qwen/Qwen3-8B-FP8, meta-llama/Llama-3.1-8B-Instruct]
    ttft_ms: 1
    itl_ms: 1
    output_tokens: 8
  down:
    url: {url}
    timeout_s: 2
"""
MODELS = """\
groups:
  quantized: ["*-FP8"]
models:
  - {id: Qwen/Qwen3-8B, mode: chat, max_input_tokens: 8192, max_output_tokens: 2048}
  - {id: Qwen/Qwen3-Coder-30B, mode: chat, max_input_tokens: 262144}
  - {id: mistralai/Mistral-7B, mode: chat}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dead_url: str) -> Path:
    """A project folder (the current directory) with configs/ and no plans/ yet."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "servers.yaml").write_text(SERVERS.format(url=dead_url))
    (configs / "models.yaml").write_text(MODELS)
    monkeypatch.setenv("RUNNER_CONFIG_DIR", str(configs))
    monkeypatch.delenv("RUNNER_SERVER", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def new(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, answers: str,
        *argv: str) -> tuple[int, str, str]:
    """`runner new ARGV` in-process with `answers` as standard input."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(answers))
    return run_cli(capsys, "new", *argv)


def lines(*answers: str) -> str:
    return "".join(a + "\n" for a in answers)


def test_a_whole_dialogue_against_the_live_simulator(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = lines("", "7", "foo*", "1-2", "", "", "1,4", "", "", "20", "qwen-lat")
    code, out, err = new(capsys, monkeypatch, answers)
    assert code == EXIT_OK, err
    assert "  1) sim   simulator, started by runner" in err
    assert "inventory: live from server 'sim'" in err
    assert "  3  meta-llama/Llama-3.1-8B-Instruct  -     -       -" in err
    assert "Models [all]: 7\n  7 is not in 1-3\n" in err
    assert "  no model matches 'foo*'\n" in err
    assert "  1) the pattern     Qwen/*" in err and "Concurrencies [1, 4, 16]: 1,4" in err
    text = (project / "plans" / "qwen-lat.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../schemas/plan.schema.json\n")
    assert "    models: Qwen/*  # a pattern, resolved again at every run\n" in text
    assert "      concurrency: [1, 4]\n" in text and "load: {requests: 20}" in text
    plan = load_plan("plans/qwen-lat.yaml")
    assert plan.name == "qwen-lat" and plan.server == "sim"
    assert out.startswith("plan: qwen-lat (plans/qwen-lat.yaml, sha256 ")
    assert "latency/Qwen/Qwen3-8B-FP8/concurrency=4" in out
    assert out.rstrip().endswith("TOTAL: 1 benchmark (0 skipped), 2 models, 4 jobs, 80 requests")
    assert "Models" not in out  # questions never go to stdout


def test_the_fixed_list_instead_of_the_proposed_pattern(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = new(capsys, monkeypatch, lines("1,2", "2", "", "", "", "", "", "fixed"),
                       "--server", "sim")
    assert code == EXIT_OK, err
    text = (project / "plans" / "fixed.yaml").read_text()
    assert "models: [Qwen/Qwen3-8B, Qwen/Qwen3-8B-FP8]  # exact model ids" in text


def test_scripted_with_yes_asks_nothing(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = new(capsys, monkeypatch, "", "--name", "tp", "--server", "down",
                         "--models", "Qwen/*,!@quantized", "--preset", "throughput", "--yes")
    assert code == EXIT_OK, err
    assert "WARNING: inventory from the fallback file" in err
    assert "Request rates (req/s): 1, 4, 16\n" in err  # the defaults taken are shown
    plan = load_plan("plans/tp.yaml")
    (bench,) = plan.benchmarks
    assert bench.models == ("Qwen/*", "!@quantized") and bench.matrix == {"rate": [1, 4, 16]}
    assert bench.params["duration_s"] == 60 and bench.params["max_concurrency"] == 256
    assert "TOTAL: 1 benchmark (0 skipped), 2 models, 6 jobs, 360 s of timed jobs" in out


def test_the_modeline_points_at_the_nearest_schemas_folder(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = project / "elsewhere"
    (other / "schemas").mkdir(parents=True)
    (other / "schemas" / "plan.schema.json").write_text("{}")
    code, _, err = new(capsys, monkeypatch, "", "--name", "m", "--server", "down", "--models",
                       "all", "--yes", "--plans-dir", str(other / "plans" / "team"))
    assert code == EXIT_OK, err
    text = (other / "plans" / "team" / "m.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../../schemas/plan.schema.json\n")


def test_fallback_warns_and_caps_long_context_by_the_models_limit(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = lines("2", "1,2", "", "long-context", "10000", "", "", "", "lc")
    code, _, err = new(capsys, monkeypatch, answers)
    assert code == EXIT_OK, err
    assert "WARNING: inventory from the fallback file" in err and "connection refused" in err
    assert "  1  Qwen/Qwen3-8B         chat  8192    2048" in err
    assert "(input_tokens at most 8192: the max_input_tokens of Qwen/Qwen3-8B)" in err
    assert "  10000 is more than 8192, the max_input_tokens of Qwen/Qwen3-8B\n" in err
    (bench,) = load_plan("plans/lc.yaml").benchmarks
    assert bench.params["input_tokens"] == 8192 and bench.params["concurrency"] == 1
    assert "# Written by `runner new` (preset long-context) from the fallback models file" in (
        project / "plans" / "lc.yaml").read_text()


def test_an_existing_plan_is_replaced_only_when_the_user_says_so(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "plans").mkdir()
    (project / "plans" / "mine.yaml").write_text("keep me\n")
    answers = lines("all", "", "", "", "", "", "bad name", "mine", "", "mine", "y")
    code, _, err = new(capsys, monkeypatch, answers, "--server", "down", "--preset", "latency")
    assert code == EXIT_OK, err
    assert "  'bad name' is not a valid plan name" in err
    assert err.count("plans/mine.yaml exists. Replace it? [n]: ") == 2
    assert load_plan("plans/mine.yaml").name == "mine"


def test_yes_never_replaces_a_file(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "plans").mkdir()
    (project / "plans" / "mine.yaml").write_text("keep me\n")
    code, _, err = new(capsys, monkeypatch, "", "--name", "mine.yaml", "--server", "down",
                       "--models", "all", "--yes")
    assert code == EXIT_INVALID
    assert "plans/mine.yaml exists and runner new never replaces a file without asking" in err
    assert (project / "plans" / "mine.yaml").read_text() == "keep me\n"


def test_yes_alone_takes_every_default_as_the_readme_says(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --models: every model ('all'); no --name: the preset's name, else the first free
    name after it, so a second run writes a second plan and replaces nothing."""
    code, _, err = new(capsys, monkeypatch, "", "--server", "down", "--yes")
    assert code == EXIT_OK, err
    assert "Models [all]" not in err and "Models: all\n" in err
    (bench,) = load_plan("plans/latency.yaml").benchmarks
    assert bench.models == "all"
    first = (project / "plans" / "latency.yaml").read_text()
    code, _, err = new(capsys, monkeypatch, "", "--server", "down", "--yes")
    assert code == EXIT_OK, err
    assert "wrote plans/latency-2.yaml" in err
    assert (project / "plans" / "latency.yaml").read_text() == first


def test_a_refused_name_is_not_offered_again(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "plans").mkdir()
    for name in ("latency", "latency-2"):
        (project / "plans" / f"{name}.yaml").write_text("keep me\n")
    answers = lines("", "", "", "", "", "", "", "latency", "", "")
    code, _, err = new(capsys, monkeypatch, answers, "--server", "down")
    assert code == EXIT_OK, err
    assert "Models [all]: " in err
    assert err.count("Plan name [latency-3]: ") == 2  # before and after refusing `latency`
    assert "plans/latency.yaml exists. Replace it? [n]: " in err
    assert load_plan("plans/latency-3.yaml").name == "latency-3"
    assert (project / "plans" / "latency.yaml").read_text() == "keep me\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--name", "a/b"], "--name: 'a/b' is not a valid plan name"),
        (["--server", "nope"], "server 'nope' (from --server) is not defined"),
        (["--server", "down", "--models", "~("], "invalid regex '~('"),
    ],
)
def test_invalid_options_exit_2_before_any_question(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    argv: list[str], message: str
) -> None:
    code, out, err = new(capsys, monkeypatch, "", *argv)
    assert code == EXIT_INVALID and message in err and out == ""
    assert err.startswith("error: ") and not (project / "plans").exists()  # nothing asked


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--models", "foo*"], "--models 'foo*': no model matches 'foo*'"),
        (["--source", "live"], "--source live forbids the fallback"),
    ],
)
def test_inventory_problems_exit_3(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    argv: list[str], message: str
) -> None:
    code, _, err = new(capsys, monkeypatch, "", "--server", "down", *argv)
    assert code == EXIT_INVENTORY and message in err


@pytest.mark.parametrize(
    ("answers", "argv", "message"),
    [
        ("", [], "no answer to 'Server' (end of input); pass --server NAME"),
        (lines("down"), [], "no answer to 'Models' (end of input); pass --models PATTERN"),
        (lines("down", "1", ""), [], "no answer to 'Concurrencies' (end of input); pass --yes"),
        ("", ["--name", "n", "--server", "down", "--models", "all", "--preset", "latency"],
         "no answer to 'Concurrencies' (end of input); pass --yes to take the defaults"),
    ],
)
def test_end_of_input_exits_2_and_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    answers: str, argv: list[str], message: str
) -> None:
    code, _, err = new(capsys, monkeypatch, answers, *argv)
    assert code == EXIT_INVALID and f"error: {message}" in err
    assert not (project / "plans").exists()


class _Interrupting(io.StringIO):
    """A stdin on which the user presses Ctrl-C at the third question."""

    def readline(self, size: int | None = -1) -> str:
        if self.tell() >= len("down\nall\n"):
            raise KeyboardInterrupt
        return super().readline(size)


def test_ctrl_c_exits_130_and_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", _Interrupting("down\nall\n"))
    code, _, err = run_cli(capsys, "new")
    assert code == EXIT_INTERRUPTED and err.endswith("Save as [pattern]: \ninterrupted\n")
    assert not (project / "plans").exists()


def _env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_SERVER"}
    return {**env, "RUNNER_CONFIG_DIR": str(project / "configs"), "PYTHONPATH": str(REPO)}


def test_subprocess_with_answers_piped_in(project: Path) -> None:
    answers = lines("sim", "Qwen/*, !*-FP8", "", "throughput", "2 8", "5", "", "piped")
    done = subprocess.run([sys.executable, "-m", "runner", "new", "--plans-dir", "plans/team"],
                          input=answers, capture_output=True, text=True, env=_env(project),
                          cwd=project, timeout=60)
    assert done.returncode == EXIT_OK, done.stderr
    text = (project / "plans" / "team" / "piped.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../../schemas/plan.schema.json\n")
    assert 'models: [Qwen/*, "!*-FP8"]' in text and "rate: [2, 8]" in text
    assert "duration_s: 5" in text
    assert "TOTAL: 1 benchmark (0 skipped), 1 model, 2 jobs, " in done.stdout
    assert "Models [" not in done.stdout and "selected 1: Qwen/Qwen3-8B" in done.stderr


# --- on a pseudo-terminal -------------------------------------------------------------------

# Makes the pty the child's controlling terminal, so that Ctrl-C (\x03) sends it SIGINT.
_ON_TTY = ("import fcntl, os, runpy, sys, termios; os.setsid(); "
           "fcntl.ioctl(0, termios.TIOCSCTTY, 0); sys.argv = ['runner', *sys.argv[1:]]; "
           "runpy.run_module('runner', run_name='__main__')")


class Terminal:
    """A `runner new` process on a pseudo-terminal: read what it shows, type answers."""

    def __init__(self, project: Path, *argv: str) -> None:
        self.leader, follower = os.openpty()
        self.proc = subprocess.Popen([sys.executable, "-c", _ON_TTY, "new", *argv],
                                     stdin=follower, stdout=follower, stderr=follower,
                                     env=_env(project), cwd=project, close_fds=True)
        os.close(follower)
        self.screen = ""
        self.seen = 0  # what `expect` has matched so far: the next match must come after

    def expect(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen[self.seen:]:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.leader], [], [], max(left, 0))
            if not ready:
                raise AssertionError(f"{text!r} not shown; screen:\n{self.screen}")
            try:
                self.screen += os.read(self.leader, 4096).decode()
            except OSError:  # the child closed the terminal
                raise AssertionError(f"{text!r} not shown; screen:\n{self.screen}") from None
        self.seen = self.screen.index(text, self.seen) + len(text)

    def type(self, text: str) -> None:
        os.write(self.leader, text.encode())

    def finish(self) -> int:
        code = self.proc.wait(timeout=30)
        self.expect_rest()
        os.close(self.leader)
        return code

    def expect_rest(self) -> None:
        while select.select([self.leader], [], [], 0.2)[0]:
            try:
                chunk = os.read(self.leader, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.screen += chunk.decode()


@pytest.fixture
def terminal(project: Path) -> Iterator[list[Terminal]]:
    started: list[Terminal] = []
    yield started
    for term in started:
        if term.proc.poll() is None:
            term.proc.kill()
            term.proc.wait()


def test_a_dialogue_on_a_terminal(project: Path, terminal: list[Terminal]) -> None:
    term = Terminal(project)
    terminal.append(term)
    for prompt, answer in [("Server [sim]: ", "\r"), ("Models [all]: ", "9\r"),
                           ("9 is not in 1-3", "1-2,!2\r"), ("Preset [latency]: ", "3\r"),
                           # the simulator lists no limits: models.yaml's 8192 fills it
                           ("Input tokens [8192]: ", "\r"), ("Concurrency [1]: ", "2\r"),
                           ("Requests [20]: ", "\r"), ("Plan name [long-context]: ", "tty\r")]:
        term.expect(prompt)
        term.type(answer)
    assert term.finish() == EXIT_OK, term.screen
    assert "selected 1: Qwen/Qwen3-8B" in term.screen and "Save as" not in term.screen
    assert "TOTAL: 1 benchmark (0 skipped), 1 model, 1 job, 20 requests" in term.screen
    (bench,) = load_plan(str(project / "plans" / "tty.yaml")).benchmarks
    assert bench.models == "Qwen/Qwen3-8B" and bench.params["concurrency"] == 2


def test_ctrl_c_on_a_terminal(project: Path, terminal: list[Terminal]) -> None:
    term = Terminal(project, "--server", "down")
    terminal.append(term)
    term.expect("Models [all]: ")
    term.type("all\r")
    term.expect("Save as [pattern]: ")
    term.type("\x03")
    assert term.finish() == EXIT_INTERRUPTED
    assert "interrupted" in term.screen and not (project / "plans").exists()


def test_end_of_input_on_a_terminal(project: Path, terminal: list[Terminal]) -> None:
    term = Terminal(project, "--server", "down")
    terminal.append(term)
    term.expect("Models [all]: ")
    term.type("\x04")  # Ctrl-D
    assert term.finish() == EXIT_INVALID
    assert "error: no answer to 'Models' (end of input)" in term.screen
