from convostack.cli import main

main()
