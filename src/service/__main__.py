import sys

from src.service.cli import main

sys.exit(main())
