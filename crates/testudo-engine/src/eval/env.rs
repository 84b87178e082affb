//! Lexical environments: a persistent linked list of bindings.
//!
//! Closures capture the environment at their definition (conformance #13: a later `let` of
//! the same name does not change what a closure sees), and a block's bindings vanish when the
//! block ends, both for free because extending an environment never mutates it.

use std::rc::Rc;

use super::value::Value;

#[derive(Clone, Default)]
pub struct Env(Option<Rc<Binding>>);

pub struct Binding {
    name: Rc<str>,
    value: Value,
    parent: Env,
}

impl Env {
    pub fn bind(&self, name: Rc<str>, value: Value) -> Env {
        Env(Some(Rc::new(Binding {
            name,
            value,
            parent: self.clone(),
        })))
    }

    /// The deepest value bound in this environment (a closure's depth derives from it).
    pub fn max_depth(&self) -> u32 {
        let mut deepest = 0;
        let mut cur = self.0.as_deref();
        while let Some(b) = cur {
            deepest = deepest.max(b.value.depth());
            cur = b.parent.0.as_deref();
        }
        deepest
    }

    pub fn lookup(&self, name: &str) -> Option<&Value> {
        let mut cur = self.0.as_deref();
        while let Some(b) = cur {
            if &*b.name == name {
                return Some(&b.value);
            }
            cur = b.parent.0.as_deref();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_binding_shadows_outer_and_outer_env_is_unchanged() {
        let outer = Env::default().bind("x".into(), Value::Int(1));
        let inner = outer.bind("x".into(), Value::Int(2));
        assert!(matches!(inner.lookup("x"), Some(Value::Int(2))));
        assert!(matches!(outer.lookup("x"), Some(Value::Int(1))));
        assert!(outer.lookup("y").is_none());
    }
}
