print("hello from a batch pipeline deployment")
