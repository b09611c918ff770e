"""``python -m cloudcircuit``."""

from cloudcircuit.cli import main

main()
