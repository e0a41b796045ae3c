from scanner import main

main()
