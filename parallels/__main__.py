from parallels.cli import main

main()
