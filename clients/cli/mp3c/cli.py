"""mp3c: convert videos to MP3 with mp3converter, from the command line.

Exit codes: 0 all went well; 1 the server refused something or a conversion failed (its reason is
printed); 2 the gateway is not reachable; 3 not logged in; 64 a bad command line; 130 stopped by
Ctrl-C (jobs already uploaded go on on the server)."""

import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mp3c import errors
from mp3c.config import forget_token, load_token, save_token, token_file
from mp3c.display import for_terminal, shown
from mp3c.errors import Cancelled, ConversionFailed, Mp3cError, NotLoggedIn, Refused, Unreachable, cannot_save
from mp3c.gateway import Gateway

DEFAULT_URL = "http://localhost:8080"


def mp3_name(upload_name: str) -> str:
    """The upload's name with .mp3 for its extension, as the server names the MP3."""
    stem = upload_name.rsplit(".", 1)[0] if "." in upload_name else upload_name
    return f"{stem or 'audio'}.mp3"


def local_mp3_name(server_name: str) -> str:
    """The name to save a job's MP3 under, from the file name the server reports: its last part only
    (after any / or \\), so that no name the server sends leaves the output folder."""
    base = server_name.replace("\\", "/").rsplit("/", 1)[-1]
    return mp3_name("" if base == ".." else base.replace("\0", ""))


def output_folder(folder: Path) -> Path:
    """The folder, made if missing; one that cannot be had is an Mp3cError, not a traceback."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise cannot_save(folder, error) from None
    return folder


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, help=__doc__)
@click.option("--url", envvar="MP3C_URL", default=DEFAULT_URL, show_default=True, metavar="URL",
              help="The gateway (also MP3C_URL).")
@click.pass_context
def cli(ctx: click.Context, url: str) -> None:
    ctx.obj = url.rstrip("/")


def gateway(ctx: click.Context) -> Gateway:
    return Gateway(ctx.obj, load_token(ctx.obj))


@cli.command()
@click.option("--email", help="Your account's e-mail (asked for when on a terminal).")
@click.pass_context
def login(ctx: click.Context, email: str | None) -> None:
    """Log in and keep the token (in your config dir, readable by you alone).

    The password is asked for on a terminal, or read from the first line of standard input."""
    interactive = sys.stdin.isatty()
    if email is None:
        if not interactive:
            raise click.UsageError("Give --email when the password comes from standard input.")
        email = click.prompt("Email")
    password = click.prompt("Password", hide_input=True) if interactive else sys.stdin.readline().rstrip("\r\n")
    save_token(ctx.obj, Gateway(ctx.obj).login(email, password))
    click.echo(f"Logged in as {email}. (Token saved in {token_file()}.)")


@cli.command()
@click.pass_context
def logout(ctx: click.Context) -> None:
    """Forget the token kept for this gateway."""
    click.echo("Logged out." if forget_token(ctx.obj) else "Not logged in.")


@dataclass
class Conversion:
    """One file's way through: upload, conversion followed live, download."""

    path: Path
    target: Path
    job_id: str | None = None
    settled: bool = False
    error: Mp3cError | None = None

    def run(self, gw: Gateway, display, cancelled: threading.Event, wait: bool) -> None:
        track = display.track(self.path.name, self.path.stat().st_size)
        try:
            self.job_id = gw.upload(self.path, track.sent, cancelled)["job_id"]
            if not wait:
                track.finished(f"queued as job {self.job_id}")
                self.settled = True
                return
            track.state("queued")
            job = gw.follow(self.job_id, lambda _event, job: track.state(job["status"], job["progress"]), cancelled)
            if job["status"] == "failed":
                raise ConversionFailed(job["error"])
            track.finished(f"saved {gw.download(job['mp3_fid'], self.target)}")
        except Cancelled:
            return
        except (Refused, ConversionFailed) as refused:
            self.error = refused
            track.failed(str(refused))
        except Mp3cError as error:  # not logged in, gateway down: said once, for all files
            self.error = error
        except Exception as error:  # a bug or a local disk problem: this file fails, the others go on
            self.error = Mp3cError(f"{error.__class__.__name__}: {error}")
            track.failed(str(self.error))
        self.settled = True


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to save the MP3s (default: next to each video).")
@click.option("--no-wait", is_flag=True, help="Only upload; print each job's id and return.")
@click.pass_context
def convert(ctx: click.Context, files: tuple[Path, ...], output_dir: Path | None, no_wait: bool) -> int:
    """Upload videos, follow their conversion live, and download each MP3, named after its video.

    Several files go at once. The exit code is 1 if any of them failed."""
    gw = gateway(ctx)
    gw.login_required()
    if output_dir is not None:
        output_folder(output_dir)
    conversions = [Conversion(path, target) for path, target in zip(files, targets(files, output_dir), strict=True)]
    cancelled = threading.Event()
    with for_terminal() as display:
        workers = [threading.Thread(target=c.run, args=(gw, display, cancelled, not no_wait), daemon=True)
                   for c in conversions]
        for worker in workers:
            worker.start()
        try:
            for worker in workers:
                while worker.is_alive():
                    worker.join(0.2)
        except KeyboardInterrupt:
            cancelled.set()
    if cancelled.is_set():
        return interrupted(conversions)
    problems = [c.error for c in conversions if c.error is not None]
    for kind in (NotLoggedIn, Unreachable):
        first = next((p for p in problems if isinstance(p, kind)), None)
        if first is not None:
            raise first
    return errors.FAILED if problems else 0


def targets(files: tuple[Path, ...], output_dir: Path | None) -> list[Path]:
    """Where each MP3 goes: named after its video, in output_dir or next to the video; two videos
    that would share a name in one run (clip.mkv, clip.mov) do not overwrite each other."""
    chosen: list[Path] = []
    for path in files:
        folder = output_dir or path.resolve().parent
        target, number = folder / mp3_name(path.name), 1
        while target in chosen:
            number += 1
            target = folder / f"{Path(mp3_name(path.name)).stem} ({number}).mp3"
        chosen.append(target)
    return chosen


def interrupted(conversions: list[Conversion]) -> int:
    say = Console(stderr=True, highlight=False).print
    say("Stopped.")
    for c in conversions:
        if c.settled:
            continue
        if c.job_id is None:
            say(shown(f"  {c.path.name}: upload stopped; nothing was stored."), markup=False)
        else:
            say(shown(f"  {c.path.name}: still converting on the server as job {c.job_id} "
                      f"(mp3c download {c.job_id} fetches it later)."), markup=False)
    return errors.INTERRUPTED


@cli.command()
@click.pass_context
def jobs(ctx: click.Context) -> None:
    """List your jobs, newest first."""
    rows = [(j["job_id"], j["filename"], j["status"], f"{j['progress']}%", j["updated_at"][:19].replace("T", " "),
             j["error"] or "") for j in gateway(ctx).jobs()]
    headings = ("JOB", "FILE", "STATUS", "PROGRESS", "UPDATED (UTC)", "REASON")
    rows = [tuple(map(shown, row)) for row in rows]
    if not sys.stdout.isatty():
        for row in (headings, *rows):
            click.echo("\t".join(row))
        return
    table = Table(*headings, box=None, header_style="bold")
    for row in rows:
        table.add_row(*map(Text, row))  # Text: the server's brackets are not markup
    Console().print(table)


@cli.command()
@click.argument("job_id")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path(),
              help="Where to save the MP3 (default: here).")
@click.pass_context
def download(ctx: click.Context, job_id: str, output_dir: Path) -> None:
    """Download the MP3 of a finished job, named after its video."""
    gw = gateway(ctx)
    job = gw.job(job_id)
    if job["status"] == "failed":
        raise ConversionFailed(f"Job {job_id} failed: {job['error']}")
    if job["status"] != "done":
        raise Mp3cError(f"Job {job_id} is {job['status']} ({job['progress']}%); nothing to download yet.")
    target = output_folder(output_dir) / local_mp3_name(job["filename"])
    if target.parent.resolve() != output_dir.resolve():
        raise Mp3cError(f"The server named the file {job['filename']!r}, which is not a name in {output_dir}.")
    saved = gw.download(job["mp3_fid"], target)
    click.echo(shown(f"saved {saved}"))


def main() -> None:
    try:
        result = cli.main(prog_name="mp3c", standalone_mode=False)
    except click.UsageError as error:
        error.show()
        sys.exit(errors.USAGE)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("\nStopped.", err=True)
        sys.exit(errors.INTERRUPTED)
    except Mp3cError as error:
        click.echo(shown(f"mp3c: {error}"), err=True)
        sys.exit(error.exit_code)
    sys.exit(result if isinstance(result, int) else 0)
