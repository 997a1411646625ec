from kitt._cli import main

main()
