// Command broken does not compile: the build tests check that the compiler's
// message reaches the caller, naming the function.
package main

func main() {
	var n int = "not a number"
	_ = n
}
