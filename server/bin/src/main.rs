fn main() {
    println!("shoal: under construction");
}
