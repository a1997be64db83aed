"""python -m services.identity"""

from chassis.server import run
from services.identity.app import build
from services.identity.settings import IdentitySettings


async def main() -> None:
    host = await build(IdentitySettings())
    await host.serve_until_signalled()


if __name__ == "__main__":
    run(main)
