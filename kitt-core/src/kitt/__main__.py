from kitt.cli import main

main()
